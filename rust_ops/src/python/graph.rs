//! `RouteGraph` and its results (`GraphRoute`, `GraphPath`, `GraphLeg`) for Python (see
//! `pipeline._rust_ops.pyi`).
//!
//! Arguments are checked at the boundary (`RouteQueryError` / `InvalidPoolError` with codes, a
//! `TypeError` for a non-int or non-str); the search runs with the GIL released. Reprs match
//! the twin's dataclasses (`pipeline/ops/twin/graph/`).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{big_int, repr_str, u128_arg, CountArg};
use super::errors::to_pyerr;
use super::pool::PyPool;
use super::v3::PyV3Pool;
use crate::error::{InvalidPoolError, RouteQueryError};
use crate::graph::{
    GraphLeg, GraphPath, GraphPool, GraphRoute, RouteGraph, DEFAULT_MAX_HOPS, GAS_BASE, GAS_CP_HOP,
    GAS_V3_HOP, GAS_V3_TICK, MAX_SPLITS,
};
use crate::pool::Pool;

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// One hop of a graph route (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "GraphLeg", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyGraphLeg(pub GraphLeg);

#[pymethods]
impl PyGraphLeg {
    #[getter]
    fn pool_id(&self) -> &str {
        &self.0.pool_id
    }
    #[getter]
    fn venue(&self) -> &str {
        &self.0.venue
    }
    #[getter]
    fn kind(&self) -> &str {
        self.0.kind
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
    fn zero_for_one(&self) -> bool {
        self.0.zero_for_one
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
    fn ticks_crossed(&self) -> u32 {
        self.0.ticks_crossed
    }
    #[getter]
    fn gas(&self) -> u64 {
        self.0.gas
    }
    #[getter]
    fn fee(&self) -> u32 {
        self.0.fee
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let l = &self.0;
        Ok(format!(
            "GraphLeg(pool_id={}, venue={}, kind={}, token_in={}, token_out={}, zero_for_one={}, \
             amount_in={}, amount_out={}, ticks_crossed={}, gas={}, fee={})",
            repr_str(py, &l.pool_id)?,
            repr_str(py, &l.venue)?,
            repr_str(py, l.kind)?,
            repr_str(py, &l.token_in)?,
            repr_str(py, &l.token_out)?,
            py_bool(l.zero_for_one),
            l.amount_in,
            l.amount_out,
            l.ticks_crossed,
            l.gas,
            l.fee,
        ))
    }
}

/// One path of a graph route (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "GraphPath", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyGraphPath(pub GraphPath);

#[pymethods]
impl PyGraphPath {
    #[getter]
    fn legs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0.legs.iter().map(|l| PyGraphLeg(l.clone())))
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
    fn mid_price_num<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.mid_price_num)
    }
    #[getter]
    fn mid_price_den<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.mid_price_den)
    }
    #[getter]
    fn price_impact_ppm(&self) -> u32 {
        self.0.price_impact_ppm
    }
    #[getter]
    fn gas(&self) -> u64 {
        self.0.gas
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let p = &self.0;
        Ok(format!(
            "GraphPath(legs={}, amount_in={}, amount_out={}, mid_price_num={}, mid_price_den={}, \
             price_impact_ppm={}, gas={})",
            self.legs(py)?.repr()?,
            p.amount_in,
            p.amount_out,
            big_int(py, &p.mid_price_num)?,
            big_int(py, &p.mid_price_den)?,
            p.price_impact_ppm,
            p.gas,
        ))
    }
}

/// A route over a `RouteGraph`, one path or several in parallel (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "GraphRoute", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyGraphRoute(pub GraphRoute);

#[pymethods]
impl PyGraphRoute {
    #[getter]
    fn paths<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0.paths.iter().map(|p| PyGraphPath(p.clone())))
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
    fn mid_price_num<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.mid_price_num)
    }
    #[getter]
    fn mid_price_den<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.mid_price_den)
    }
    #[getter]
    fn price_impact_ppm(&self) -> u32 {
        self.0.price_impact_ppm
    }
    #[getter]
    fn gas(&self) -> u64 {
        self.0.gas
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = &self.0;
        Ok(format!(
            "GraphRoute(paths={}, amount_in={}, amount_out={}, mid_price_num={}, \
             mid_price_den={}, price_impact_ppm={}, gas={})",
            self.paths(py)?.repr()?,
            r.amount_in,
            r.amount_out,
            big_int(py, &r.mid_price_num)?,
            big_int(py, &r.mid_price_den)?,
            r.price_impact_ppm,
            r.gas,
        ))
    }
}

/// A live route graph of one chain (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "RouteGraph", module = "pipeline._rust_ops")]
pub struct PyRouteGraph(pub RouteGraph);

/// The checked arguments of a query, extracted under the GIL.
struct Query {
    amount: u128,
    max_hops: usize,
    max_splits: usize,
    gas_price: u128,
}

impl Query {
    fn extract(
        amount: &Bound<'_, PyAny>,
        field: &'static str,
        max_hops: CountArg,
        max_splits: CountArg,
        gas_price: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let py = amount.py();
        let uint = |obj: &Bound<'_, PyAny>, field: &'static str| -> PyResult<u128> {
            u128_arg(obj)?
                .map_err(|value| to_pyerr(py, RouteQueryError::ValueOutOfRange { field, value }))
        };
        let amount = uint(amount, field)?;
        let gas_price = uint(gas_price, "gas_price")?;
        let max_hops = max_hops
            .0
            .map_err(|value| to_pyerr(py, RouteQueryError::MaxHopsOutOfRange { value }))?;
        let max_splits = max_splits
            .0
            .map_err(|value| to_pyerr(py, RouteQueryError::MaxSplitsOutOfRange { value }))?;
        Ok(Self { amount, max_hops, max_splits, gas_price })
    }
}

#[pymethods]
impl PyRouteGraph {
    #[new]
    #[pyo3(signature = (chain_id = 0))]
    fn new(chain_id: u64) -> Self {
        Self(RouteGraph::new(chain_id))
    }

    #[getter]
    fn chain_id(&self) -> u64 {
        self.0.chain_id()
    }

    #[allow(clippy::too_many_arguments)]
    fn update_cp_pool(
        &mut self,
        py: Python<'_>,
        pool_id: String,
        venue: String,
        token0: String,
        token1: String,
        reserve0: &Bound<'_, PyAny>,
        reserve1: &Bound<'_, PyAny>,
        fee: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let int = |obj: &Bound<'_, PyAny>, field: &'static str| -> PyResult<u128> {
            u128_arg(obj)?.map_err(|value| {
                let pool_id = pool_id.clone();
                to_pyerr(py, InvalidPoolError::ValueOutOfRange { pool_id, field, value })
            })
        };
        let (r0, r1, fee) =
            (int(reserve0, "reserve0")?, int(reserve1, "reserve1")?, int(fee, "fee")?);
        let pool =
            Pool::new(pool_id, venue, token0, token1, r0, r1, fee).map_err(|e| to_pyerr(py, e))?;
        self.0.update_pool(GraphPool::constant_product(&pool));
        Ok(())
    }

    fn update_v3_pool(
        &mut self,
        py: Python<'_>,
        pool_id: String,
        venue: String,
        token0: String,
        token1: String,
        pool: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let pool: Arc<_> = pool.downcast::<PyV3Pool>()?.get().0.clone();
        let pool =
            GraphPool::v3(pool_id, venue, token0, token1, pool).map_err(|e| to_pyerr(py, e))?;
        self.0.update_pool(pool);
        Ok(())
    }

    fn update_pool(&mut self, pool: &Bound<'_, PyAny>) -> PyResult<()> {
        let pool = pool.downcast::<PyPool>()?.get().0.clone();
        self.0.update_pool(GraphPool::constant_product(&pool));
        Ok(())
    }

    fn remove_pool(&mut self, pool_id: &str) -> bool {
        self.0.remove_pool(pool_id)
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (token_in, token_out, amount_in, max_hops = CountArg(Ok(DEFAULT_MAX_HOPS)),
                        max_splits = CountArg(Ok(1)), gas_price = None))]
    fn best_route(
        &self,
        py: Python<'_>,
        token_in: &str,
        token_out: &str,
        amount_in: &Bound<'_, PyAny>,
        max_hops: CountArg,
        max_splits: CountArg,
        gas_price: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyGraphRoute>> {
        let zero = 0u8.into_pyobject(py)?.into_any();
        let q = Query::extract(
            amount_in,
            "amount_in",
            max_hops,
            max_splits,
            gas_price.unwrap_or(&zero),
        )?;
        let g = &self.0;
        py.allow_threads(|| {
            g.best_route(token_in, token_out, q.amount, q.max_hops, q.max_splits, q.gas_price)
        })
        .map(|r| r.map(PyGraphRoute))
        .map_err(|e| to_pyerr(py, e))
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (token_in, token_out, amount_out, max_hops = CountArg(Ok(DEFAULT_MAX_HOPS)),
                        max_splits = CountArg(Ok(1)), gas_price = None))]
    fn best_route_exact_out(
        &self,
        py: Python<'_>,
        token_in: &str,
        token_out: &str,
        amount_out: &Bound<'_, PyAny>,
        max_hops: CountArg,
        max_splits: CountArg,
        gas_price: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyGraphRoute>> {
        let zero = 0u8.into_pyobject(py)?.into_any();
        let q = Query::extract(
            amount_out,
            "amount_out",
            max_hops,
            max_splits,
            gas_price.unwrap_or(&zero),
        )?;
        let g = &self.0;
        py.allow_threads(|| {
            g.best_route_exact_out(
                token_in,
                token_out,
                q.amount,
                q.max_hops,
                q.max_splits,
                q.gas_price,
            )
        })
        .map(|r| r.map(PyGraphRoute))
        .map_err(|e| to_pyerr(py, e))
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __contains__(&self, pool_id: &str) -> bool {
        self.0.pool(pool_id).is_some()
    }

    fn __repr__(&self) -> String {
        format!("RouteGraph(chain_id={}, {} pools)", self.0.chain_id(), self.0.len())
    }
}

/// Adds the graph classes and constants to the module.
///
/// # Errors
///
/// If the module refuses an attribute (never in practice).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_SPLITS", MAX_SPLITS)?;
    m.add("GAS_BASE", GAS_BASE)?;
    m.add("GAS_CP_HOP", GAS_CP_HOP)?;
    m.add("GAS_V3_HOP", GAS_V3_HOP)?;
    m.add("GAS_V3_TICK", GAS_V3_TICK)?;
    m.add_class::<PyRouteGraph>()?;
    m.add_class::<PyGraphRoute>()?;
    m.add_class::<PyGraphPath>()?;
    m.add_class::<PyGraphLeg>()?;
    Ok(())
}
