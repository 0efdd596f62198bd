//! `decode_fetch_v11` for Python: a Kafka `FetchResponse` v11 body as aiokafka's
//! `FetchResponse_v11` holds its fields, empty partitions left out (see `crate::fetch`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::fetch::{parse_fetch_v11, FetchedPartition};

fn partition_tuple<'py>(py: Python<'py>, p: &FetchedPartition) -> PyResult<Bound<'py, PyTuple>> {
    let aborted: PyObject = match &p.aborted {
        None => py.None(),
        Some(pairs) => PyList::new(py, pairs.iter().map(|&(a, b)| (a, b)))?.into_any().unbind(),
    };
    let records: PyObject = match &p.records {
        None => py.None(),
        Some(bytes) => PyBytes::new(py, bytes).into_any().unbind(),
    };
    PyTuple::new(
        py,
        [
            p.partition.into_pyobject(py)?.into_any().unbind(),
            p.error_code.into_pyobject(py)?.into_any().unbind(),
            p.high_watermark.into_pyobject(py)?.into_any().unbind(),
            p.last_stable_offset.into_pyobject(py)?.into_any().unbind(),
            p.log_start_offset.into_pyobject(py)?.into_any().unbind(),
            aborted,
            p.preferred_read_replica.into_pyobject(py)?.into_any().unbind(),
            records,
        ],
    )
}

/// `(throttle_time_ms, error_code, session_id, topics)` of a `FetchResponse` v11 body; see
/// `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `ValueError` when `data` is not a complete v11 response body.
#[pyfunction]
#[pyo3(signature = (data, keep_empty = false))]
pub fn decode_fetch_v11<'py>(
    py: Python<'py>,
    data: &[u8],
    keep_empty: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let parsed =
        parse_fetch_v11(data, keep_empty).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let topics = PyList::empty(py);
    for (name, partitions) in &parsed.topics {
        let parts = PyList::empty(py);
        for p in partitions {
            parts.append(partition_tuple(py, p)?)?;
        }
        topics.append((name.as_str(), parts))?;
    }
    (parsed.throttle_time_ms, parsed.error_code, parsed.session_id, topics).into_pyobject(py)
}

/// Adds the decoder to the module.
///
/// # Errors
///
/// If the function cannot be added (never in practice).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_fetch_v11, m)?)
}
