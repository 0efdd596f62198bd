//! `Pool`, `RouteLeg`, `Route`, `PoolSet` and the best-route functions for Python.
//!
//! The classes are frozen views over the plain Rust types; their reprs match the twin's
//! dataclasses character for character. The route search runs with the GIL released.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{big_int, repr_str, u128_arg, CountArg};
use super::errors::to_pyerr;
use crate::error::{InvalidPoolError, RouteQueryError};
use crate::pool::Pool;
use crate::route::{PoolSet, Route, RouteLeg, DEFAULT_MAX_HOPS};

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

/// One hop of a route (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "RouteLeg", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyRouteLeg(pub RouteLeg);

#[pymethods]
impl PyRouteLeg {
    #[getter]
    fn pool_id(&self) -> &str {
        &self.0.pool_id
    }

    #[getter]
    fn venue(&self) -> &str {
        &self.0.venue
    }

    #[getter]
    fn token_in(&self) -> &str {
        &self.0.token_in
    }

    #[getter]
    fn token_out(&self) -> &str {
        &self.0.token_out
    }

    #[getter]
    fn amount_in(&self) -> u128 {
        self.0.amount_in
    }

    #[getter]
    fn amount_out(&self) -> u128 {
        self.0.amount_out
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let l = &self.0;
        Ok(format!(
            "RouteLeg(pool_id={}, venue={}, token_in={}, token_out={}, amount_in={}, amount_out={})",
            repr_str(py, &l.pool_id)?,
            repr_str(py, &l.venue)?,
            repr_str(py, &l.token_in)?,
            repr_str(py, &l.token_out)?,
            l.amount_in,
            l.amount_out,
        ))
    }
}

/// A priced route (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "Route", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyRoute(pub Route);

#[pymethods]
impl PyRoute {
    #[getter]
    fn legs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0.legs.iter().map(|l| PyRouteLeg(l.clone())))
    }

    #[getter]
    fn amount_in(&self) -> u128 {
        self.0.amount_in
    }

    #[getter]
    fn amount_out(&self) -> u128 {
        self.0.amount_out
    }

    #[getter]
    fn mid_price_num<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyInt>> {
        big_int(py, &self.0.mid_price_num)
    }

    #[getter]
    fn mid_price_den<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyInt>> {
        big_int(py, &self.0.mid_price_den)
    }

    #[getter]
    fn price_impact_ppm(&self) -> u32 {
        self.0.price_impact_ppm
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = &self.0;
        Ok(format!(
            "Route(legs={}, amount_in={}, amount_out={}, mid_price_num={}, mid_price_den={}, \
             price_impact_ppm={})",
            self.legs(py)?.repr()?,
            r.amount_in,
            r.amount_out,
            big_int(py, &r.mid_price_num)?,
            big_int(py, &r.mid_price_den)?,
            r.price_impact_ppm,
        ))
    }
}

/// Pools indexed once for many route queries (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "PoolSet", module = "pipeline._rust_ops", frozen)]
pub struct PyPoolSet(PoolSet);

/// The query arguments every route entry point takes, extracted under the GIL.
struct Query {
    amount: u128,
    max_hops: usize,
}

impl Query {
    fn extract(
        amount: &Bound<'_, PyAny>,
        field: &'static str,
        max_hops: CountArg,
    ) -> PyResult<Self> {
        let py = amount.py();
        let amount = u128_arg(amount)?
            .map_err(|value| to_pyerr(py, RouteQueryError::ValueOutOfRange { field, value }))?;
        // Beyond usize is as out of 1..=MAX_HOPS as any other bad count.
        let max_hops = max_hops
            .0
            .map_err(|value| to_pyerr(py, RouteQueryError::MaxHopsOutOfRange { value }))?;
        Ok(Self { amount, max_hops })
    }
}

type Search = fn(&PoolSet, &str, &str, u128, usize) -> Result<Option<Route>, RouteQueryError>;

/// Runs `search` with the GIL released and wraps the answer.
fn run(
    py: Python<'_>,
    set: &PoolSet,
    search: Search,
    token_in: &str,
    token_out: &str,
    query: &Query,
) -> PyResult<Option<PyRoute>> {
    py.allow_threads(|| search(set, token_in, token_out, query.amount, query.max_hops))
        .map(|r| r.map(PyRoute))
        .map_err(|e| to_pyerr(py, e))
}

/// Collects `Pool`s from any iterable (a `TypeError` names the first thing that is not one).
fn collect_pools(pools: &Bound<'_, PyAny>) -> PyResult<Vec<Arc<Pool>>> {
    pools.try_iter()?.map(|item| Ok(item?.downcast::<PyPool>()?.get().0.clone())).collect()
}

#[pymethods]
impl PyPoolSet {
    #[new]
    fn new(py: Python<'_>, pools: &Bound<'_, PyAny>) -> PyResult<Self> {
        let pools = collect_pools(pools)?;
        py.allow_threads(|| PoolSet::new(pools)).map(Self).map_err(|e| to_pyerr(py, e))
    }

    #[pyo3(signature = (token_in, token_out, amount_in, max_hops = CountArg(Ok(DEFAULT_MAX_HOPS))))]
    fn best_route_exact_in(
        &self,
        py: Python<'_>,
        token_in: &str,
        token_out: &str,
        amount_in: &Bound<'_, PyAny>,
        max_hops: CountArg,
    ) -> PyResult<Option<PyRoute>> {
        let query = Query::extract(amount_in, "amount_in", max_hops)?;
        run(py, &self.0, PoolSet::best_route_exact_in, token_in, token_out, &query)
    }

    #[pyo3(signature = (token_in, token_out, amount_out, max_hops = CountArg(Ok(DEFAULT_MAX_HOPS))))]
    fn best_route_exact_out(
        &self,
        py: Python<'_>,
        token_in: &str,
        token_out: &str,
        amount_out: &Bound<'_, PyAny>,
        max_hops: CountArg,
    ) -> PyResult<Option<PyRoute>> {
        let query = Query::extract(amount_out, "amount_out", max_hops)?;
        run(py, &self.0, PoolSet::best_route_exact_out, token_in, token_out, &query)
    }

    #[getter]
    fn pools<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0.pools().iter().map(|p| PyPool(p.clone())))
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __repr__(&self) -> String {
        format!("PoolSet({} pools)", self.0.len())
    }
}

/// `PoolSet(pools)` then the query: the same checks in the same order as the method, so the
/// free functions and the methods raise alike.
fn one_shot(
    pools: &Bound<'_, PyAny>,
    search: Search,
    token_in: &str,
    token_out: &str,
    amount: &Bound<'_, PyAny>,
    field: &'static str,
    max_hops: CountArg,
) -> PyResult<Option<PyRoute>> {
    let set = PyPoolSet::new(pools.py(), pools)?;
    let query = Query::extract(amount, field, max_hops)?;
    run(pools.py(), &set.0, search, token_in, token_out, &query)
}

/// `PoolSet(pools).best_route_exact_in(...)`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `InvalidPoolError` (duplicate ids), `RouteQueryError`, `TypeError`.
#[pyfunction]
#[pyo3(signature = (pools, token_in, token_out, amount_in, max_hops = CountArg(Ok(DEFAULT_MAX_HOPS))))]
pub fn best_route_exact_in(
    pools: &Bound<'_, PyAny>,
    token_in: &str,
    token_out: &str,
    amount_in: &Bound<'_, PyAny>,
    max_hops: CountArg,
) -> PyResult<Option<PyRoute>> {
    one_shot(
        pools,
        PoolSet::best_route_exact_in,
        token_in,
        token_out,
        amount_in,
        "amount_in",
        max_hops,
    )
}

/// `PoolSet(pools).best_route_exact_out(...)`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `InvalidPoolError` (duplicate ids), `RouteQueryError`, `TypeError`.
#[pyfunction]
#[pyo3(signature = (pools, token_in, token_out, amount_out, max_hops = CountArg(Ok(DEFAULT_MAX_HOPS))))]
pub fn best_route_exact_out(
    pools: &Bound<'_, PyAny>,
    token_in: &str,
    token_out: &str,
    amount_out: &Bound<'_, PyAny>,
    max_hops: CountArg,
) -> PyResult<Option<PyRoute>> {
    one_shot(
        pools,
        PoolSet::best_route_exact_out,
        token_in,
        token_out,
        amount_out,
        "amount_out",
        max_hops,
    )
}
