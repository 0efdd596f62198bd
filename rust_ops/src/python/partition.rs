//! `kafka_partition` for Python.

use pyo3::prelude::*;

use crate::partition;

/// The partition Kafka's default partitioner gives `key` on a topic of `partitions`
/// partitions; see `pipeline._rust_ops.pyi`.
#[pyfunction]
#[pyo3(signature = (key, partitions))]
#[must_use]
pub fn kafka_partition(key: &[u8], partitions: u32) -> u32 {
    partition::partition_for(key, partitions)
}

/// Adds the partitioner to the module.
///
/// # Errors
///
/// If the function cannot be added (never in practice).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kafka_partition, m)?)
}
