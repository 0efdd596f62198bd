//! `PyO3` bindings: the `pipeline._rust_ops` extension module. Bindings only; the logic lives in
//! the plain Rust modules of the crate. Documented for Python users in `pipeline/_rust_ops.pyi`.

pub mod books;
pub mod convert;
pub mod errors;
pub mod fetch;
pub mod graph;
pub mod math;
pub mod partition;
pub mod pool;
pub mod v3;

use pyo3::prelude::*;

use crate::error::FEE_DENOMINATOR;
use crate::graph::MAX_HOPS;

/// The module; its name must match `module-name = "pipeline._rust_ops"` in `pyproject.toml`.
///
/// # Errors
///
/// If a class or function cannot be added (never in practice).
#[pymodule]
fn _rust_ops(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add("FEE_DENOMINATOR", FEE_DENOMINATOR)?;
    m.add("MAX_HOPS", MAX_HOPS)?;
    m.add_function(wrap_pyfunction!(math::amount_out, m)?)?;
    m.add_function(wrap_pyfunction!(math::amount_in, m)?)?;
    m.add_class::<pool::PyPool>()?;
    v3::register(m)?;
    books::register(m)?;
    graph::register(m)?;
    partition::register(m)?;
    fetch::register(m)?;
    Ok(())
}
