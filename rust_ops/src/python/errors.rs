//! Python exception classes and the mapping of [`OpsError`] onto them.
//!
//! Every exception carries `code` (the stable reason, e.g. `"insufficient_liquidity"`);
//! `InvalidPoolError` also carries `pool_id`. The pure-Python twin raises these same classes.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::error::OpsError;

create_exception!(
    pipeline._rust_ops,
    RustOpsError,
    PyException,
    "Base of every error raised by the Rust operators. `code` names the reason."
);
create_exception!(
    pipeline._rust_ops,
    PoolMathError,
    RustOpsError,
    "Pool arithmetic cannot be carried out: zero reserve, fee or value out of range, \
     insufficient liquidity, input beyond 2**128-1."
);
create_exception!(
    pipeline._rust_ops,
    InvalidPoolError,
    RustOpsError,
    "A pool definition cannot be used (bad fee, same token twice, value out of range). \
     `pool_id` names the pool."
);
create_exception!(
    pipeline._rust_ops,
    RouteQueryError,
    RustOpsError,
    "A route query cannot be answered as asked (same token twice, zero amount, max_hops, \
     max_splits or amount out of range)."
);

create_exception!(
    pipeline._rust_ops,
    InvalidV3PoolError,
    RustOpsError,
    "A Uniswap V3 pool state that cannot be used (value out of range, bad fee or tick spacing, \
     price outside the tick bounds, tick not matching the price, malformed or inconsistent \
     ticks)."
);

/// Adds the exception classes to the module.
///
/// # Errors
///
/// If the module refuses the attribute (never in practice).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RustOpsError", py.get_type::<RustOpsError>())?;
    m.add("PoolMathError", py.get_type::<PoolMathError>())?;
    m.add("InvalidPoolError", py.get_type::<InvalidPoolError>())?;
    m.add("RouteQueryError", py.get_type::<RouteQueryError>())?;
    m.add("InvalidV3PoolError", py.get_type::<InvalidV3PoolError>())?;
    Ok(())
}

/// The Python exception for `err`, with `code` (and `pool_id`) set.
pub fn to_pyerr(py: Python<'_>, err: impl Into<OpsError>) -> PyErr {
    let err = err.into();
    let message = err.to_string();
    let (pyerr, code, pool_id) = match &err {
        OpsError::PoolMath(e) => (PoolMathError::new_err(message), e.code(), None),
        OpsError::InvalidPool(e) => {
            (InvalidPoolError::new_err(message), e.code(), Some(e.pool_id()))
        }
        OpsError::RouteQuery(e) => (RouteQueryError::new_err(message), e.code(), None),
        OpsError::V3Pool(e) => (InvalidV3PoolError::new_err(message), e.code(), None),
        OpsError::V3Swap(e) => (PoolMathError::new_err(message), e.code(), None),
    };
    let value = pyerr.value(py);
    // Setting an attribute on a fresh exception instance cannot fail; if it somehow did,
    // the exception itself is still the right one to raise.
    let _ = value.setattr("code", code);
    if let Some(pool_id) = pool_id {
        let _ = value.setattr("pool_id", pool_id);
    }
    pyerr
}
