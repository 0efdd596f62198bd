//! `Pool` for Python: a frozen view over [`crate::pool::Pool`], whose repr matches the twin's
//! dataclass character for character. `RouteGraph.update_pool` takes one.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::{repr_str, u128_arg};
use super::errors::to_pyerr;
use crate::error::InvalidPoolError;
use crate::pool::Pool;

/// A constant-product pool (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "Pool", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyPool(pub Arc<Pool>);

#[pymethods]
impl PyPool {
    #[new]
    #[pyo3(signature = (pool_id, venue, token0, token1, reserve0, reserve1, fee))]
    fn new(
        pool_id: String,
        venue: String,
        token0: String,
        token1: String,
        reserve0: &Bound<'_, PyAny>,
        reserve1: &Bound<'_, PyAny>,
        fee: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let py = reserve0.py();
        let int = |obj: &Bound<'_, PyAny>, field: &'static str| -> PyResult<u128> {
            u128_arg(obj)?.map_err(|value| {
                let pool_id = pool_id.clone();
                to_pyerr(py, InvalidPoolError::ValueOutOfRange { pool_id, field, value })
            })
        };
        let (r0, r1, fee) =
            (int(reserve0, "reserve0")?, int(reserve1, "reserve1")?, int(fee, "fee")?);
        Pool::new(pool_id, venue, token0, token1, r0, r1, fee)
            .map(|p| Self(Arc::new(p)))
            .map_err(|e| to_pyerr(py, e))
    }

    #[getter]
    fn pool_id(&self) -> &str {
        self.0.pool_id()
    }

    #[getter]
    fn venue(&self) -> &str {
        self.0.venue()
    }

    #[getter]
    fn token0(&self) -> &str {
        self.0.token0()
    }

    #[getter]
    fn token1(&self) -> &str {
        self.0.token1()
    }

    #[getter]
    fn reserve0(&self) -> u128 {
        self.0.reserve0()
    }

    #[getter]
    fn reserve1(&self) -> u128 {
        self.0.reserve1()
    }

    #[getter]
    fn fee(&self) -> u32 {
        self.0.fee()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let p = &self.0;
        Ok(format!(
            "Pool(pool_id={}, venue={}, token0={}, token1={}, reserve0={}, reserve1={}, fee={})",
            repr_str(py, p.pool_id())?,
            repr_str(py, p.venue())?,
            repr_str(py, p.token0())?,
            repr_str(py, p.token1())?,
            p.reserve0(),
            p.reserve1(),
            p.fee(),
        ))
    }
}
