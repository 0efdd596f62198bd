//! `V3Pool`, `V3SwapResult` and the V3 functions for Python (see `pipeline._rust_ops.pyi`).
//!
//! Every int is checked against its Solidity type at the boundary (`uint160` price, `uint128`
//! liquidity, `int24` ticks, `uint24` fee, `int128` liquidityNet, `int256` amounts), so a
//! malformed pool is an `InvalidV3PoolError` and a bad argument a `PoolMathError`, never a
//! panic. Validation and swaps run with the GIL released.

use std::sync::Arc;

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyTuple};
use ruint::aliases::U256;

use super::convert::big_int;
use super::errors::to_pyerr;
use crate::v3::pool::AMOUNT_RANGE;
use crate::v3::{
    sqrt_ratio_at_tick as ratio_at, tick_at_sqrt_ratio as tick_at, SwapResult, V3Pool, V3PoolError,
    V3SwapError,
};

const U160_RANGE: &str = "0..=2**160-1";
const U128_RANGE: &str = "0..=2**128-1";
const INT24_RANGE: &str = "-8388608..=8388607";
const UINT24_RANGE: &str = "0..=16777215";
const INT128_RANGE: &str = "-2**127..=2**127-1";
const TICK_RANGE: &str = "-887272..=887272";
const PRICE_RANGE: &str =
    "4295128739..=1461446703485210103287273052203988822378723970341 (MIN_SQRT_RATIO..MAX_SQRT_RATIO)";

/// `obj` if it is an exact `int`, else `operator.index(obj)` (a `TypeError` for non-ints).
fn index<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if obj.is_exact_instance_of::<PyInt>() {
        return Ok(obj.clone());
    }
    obj.py().import("operator")?.getattr("index")?.call1((obj,))
}

/// An unsigned int below `2^bits` (`bits <= 256`); `Ok(Err(decimal))` when out of range.
fn uint_arg(obj: &Bound<'_, PyAny>, bits: usize) -> PyResult<Result<U256, String>> {
    let obj = index(obj)?;
    let value = match obj.extract::<u128>() {
        Ok(v) => Some(U256::from(v)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            match obj.call_method1("to_bytes", (32, "little")) {
                Ok(b) => Some(U256::from_le_slice(b.downcast::<PyBytes>()?.as_bytes())),
                Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => None,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    match value {
        Some(v) if v.bit_len() <= bits => Ok(Ok(v)),
        _ => Ok(Err(obj.str()?.to_string())),
    }
}

/// A signed int in `lo..=hi`; `Ok(Err(decimal))` when out of range.
fn int_arg(obj: &Bound<'_, PyAny>, lo: i128, hi: i128) -> PyResult<Result<i128, String>> {
    let obj = index(obj)?;
    match obj.extract::<i128>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(Ok(v)),
        Ok(_) => Ok(Err(obj.str()?.to_string())),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Ok(Err(obj.str()?.to_string())),
        Err(e) => Err(e),
    }
}

/// An argument of a swap or a tick-math function, or `PoolMathError(code="out_of_range")`.
fn swap_uint(
    obj: &Bound<'_, PyAny>,
    field: &'static str,
    bits: usize,
    range: &'static str,
) -> PyResult<U256> {
    uint_arg(obj, bits)?
        .map_err(|value| to_pyerr(obj.py(), V3SwapError::ValueOutOfRange { field, range, value }))
}

/// A Uniswap V3 pool state (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "V3Pool", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyV3Pool(pub Arc<V3Pool>);

#[pymethods]
impl PyV3Pool {
    #[new]
    #[pyo3(signature = (sqrt_price_x96, liquidity, tick, tick_spacing, fee, ticks = None))]
    fn new(
        py: Python<'_>,
        sqrt_price_x96: &Bound<'_, PyAny>,
        liquidity: &Bound<'_, PyAny>,
        tick: &Bound<'_, PyAny>,
        tick_spacing: &Bound<'_, PyAny>,
        fee: &Bound<'_, PyAny>,
        ticks: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let bad = |field: String, range: &'static str, value: String| {
            to_pyerr(py, V3PoolError::ValueOutOfRange { field, range, value })
        };
        let price = uint_arg(sqrt_price_x96, 160)?
            .map_err(|v| bad("sqrt_price_x96".into(), U160_RANGE, v))?;
        let liquidity = uint_arg(liquidity, 128)?
            .map_err(|v| bad("liquidity".into(), U128_RANGE, v))?
            .to::<u128>();
        let int24 = |obj: &Bound<'_, PyAny>, field: &str| -> PyResult<i32> {
            let v = int_arg(obj, -(1 << 23), (1 << 23) - 1)?
                .map_err(|v| bad(field.into(), INT24_RANGE, v))?;
            Ok(i32::try_from(v).unwrap_or_default())
        };
        let tick = int24(tick, "tick")?;
        let tick_spacing = int24(tick_spacing, "tick_spacing")?;
        let fee = uint_arg(fee, 24)?.map_err(|v| bad("fee".into(), UINT24_RANGE, v))?.to::<u32>();
        let ticks = match ticks {
            None => None,
            Some(items) => {
                let mut out = Vec::new();
                for (i, item) in items.try_iter()?.enumerate() {
                    let item = item?;
                    let pair =
                        item.downcast::<PyTuple>().ok().filter(|t| t.len() == 2).ok_or_else(
                            || {
                                PyTypeError::new_err(format!(
                                    "ticks[{i}] must be a (tick, liquidity_net) tuple"
                                ))
                            },
                        )?;
                    let t = int24(&pair.get_item(0)?, &format!("ticks[{i}].tick"))?;
                    let net = int_arg(&pair.get_item(1)?, i128::MIN, i128::MAX)?
                        .map_err(|v| bad(format!("ticks[{i}].liquidity_net"), INT128_RANGE, v))?;
                    out.push((t, net));
                }
                Some(out)
            }
        };
        py.allow_threads(|| V3Pool::new(price, liquidity, tick, tick_spacing, fee, ticks))
            .map(|p| Self(Arc::new(p)))
            .map_err(|e| to_pyerr(py, e))
    }

    #[getter]
    fn sqrt_price_x96<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.sqrt_price_x96())
    }

    #[getter]
    fn liquidity(&self) -> u128 {
        self.0.liquidity()
    }

    #[getter]
    fn tick(&self) -> i32 {
        self.0.tick()
    }

    #[getter]
    fn tick_spacing(&self) -> i32 {
        self.0.tick_spacing()
    }

    #[getter]
    fn fee(&self) -> u32 {
        self.0.fee()
    }

    #[getter]
    fn ticks<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.0.ticks().map(|ticks| PyTuple::new(py, ticks.iter().copied())).transpose()
    }

    #[pyo3(signature = (zero_for_one, amount_in, sqrt_price_limit_x96 = None))]
    fn swap_exact_in(
        &self,
        py: Python<'_>,
        zero_for_one: bool,
        amount_in: &Bound<'_, PyAny>,
        sqrt_price_limit_x96: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyV3SwapResult> {
        self.swap(py, zero_for_one, true, amount_in, sqrt_price_limit_x96)
    }

    #[pyo3(signature = (zero_for_one, amount_out, sqrt_price_limit_x96 = None))]
    fn swap_exact_out(
        &self,
        py: Python<'_>,
        zero_for_one: bool,
        amount_out: &Bound<'_, PyAny>,
        sqrt_price_limit_x96: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyV3SwapResult> {
        self.swap(py, zero_for_one, false, amount_out, sqrt_price_limit_x96)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let p = &self.0;
        let ticks = match self.ticks(py)? {
            Some(t) => t.repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "V3Pool(sqrt_price_x96={}, liquidity={}, tick={}, tick_spacing={}, fee={}, ticks={ticks})",
            p.sqrt_price_x96(),
            p.liquidity(),
            p.tick(),
            p.tick_spacing(),
            p.fee(),
        ))
    }
}

impl PyV3Pool {
    fn swap(
        &self,
        py: Python<'_>,
        zero_for_one: bool,
        exact_in: bool,
        amount: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyV3SwapResult> {
        let field = if exact_in { "amount_in" } else { "amount_out" };
        let amount = swap_uint(amount, field, 255, AMOUNT_RANGE)?;
        let limit =
            limit.map(|l| swap_uint(l, "sqrt_price_limit_x96", 160, U160_RANGE)).transpose()?;
        let pool = &self.0;
        py.allow_threads(|| pool.swap(zero_for_one, exact_in, amount, limit))
            .map(PyV3SwapResult)
            .map_err(|e| to_pyerr(py, e))
    }
}

/// What a V3 swap does (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "V3SwapResult", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyV3SwapResult(pub SwapResult);

#[pymethods]
impl PyV3SwapResult {
    #[getter]
    fn amount_in_used<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.amount_in_used)
    }

    #[getter]
    fn amount_out<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.amount_out)
    }

    #[getter]
    fn fee_amount<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.fee_amount)
    }

    #[getter]
    fn sqrt_price_after<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        big_int(py, &self.0.sqrt_price_after)
    }

    #[getter]
    fn tick_after(&self) -> i32 {
        self.0.tick_after
    }

    #[getter]
    fn liquidity_after(&self) -> u128 {
        self.0.liquidity_after
    }

    #[getter]
    fn ticks_crossed(&self) -> u32 {
        self.0.ticks_crossed
    }

    fn __repr__(&self) -> String {
        let r = &self.0;
        format!(
            "V3SwapResult(amount_in_used={}, amount_out={}, fee_amount={}, sqrt_price_after={}, \
             tick_after={}, liquidity_after={}, ticks_crossed={})",
            r.amount_in_used,
            r.amount_out,
            r.fee_amount,
            r.sqrt_price_after,
            r.tick_after,
            r.liquidity_after,
            r.ticks_crossed,
        )
    }
}

/// Output of spending exactly `amount_in`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `PoolMathError` as [`V3Pool::amount_out`], or `out_of_range`.
#[pyfunction]
#[pyo3(signature = (pool, zero_for_one, amount_in))]
pub fn v3_amount_out<'py>(
    py: Python<'py>,
    pool: &PyV3Pool,
    zero_for_one: bool,
    amount_in: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let amount = swap_uint(amount_in, "amount_in", 255, AMOUNT_RANGE)?;
    let pool = &pool.0;
    let out =
        py.allow_threads(|| pool.amount_out(zero_for_one, amount)).map_err(|e| to_pyerr(py, e))?;
    big_int(py, &out)
}

/// Input needed to receive exactly `amount_out`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `PoolMathError` as [`V3Pool::amount_in`], or `out_of_range`.
#[pyfunction]
#[pyo3(signature = (pool, zero_for_one, amount_out))]
pub fn v3_amount_in<'py>(
    py: Python<'py>,
    pool: &PyV3Pool,
    zero_for_one: bool,
    amount_out: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let amount = swap_uint(amount_out, "amount_out", 255, AMOUNT_RANGE)?;
    let pool = &pool.0;
    let needed =
        py.allow_threads(|| pool.amount_in(zero_for_one, amount)).map_err(|e| to_pyerr(py, e))?;
    big_int(py, &needed)
}

/// `TickMath.getSqrtRatioAtTick`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `PoolMathError(code="out_of_range")` outside `MIN_TICK..=MAX_TICK`.
#[pyfunction]
pub fn sqrt_ratio_at_tick<'py>(tick: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = tick.py();
    let out_of_range = |value| {
        to_pyerr(py, V3SwapError::ValueOutOfRange { field: "tick", range: TICK_RANGE, value })
    };
    let t = int_arg(tick, -887_272, 887_272)?.map_err(out_of_range)?;
    let ratio =
        i32::try_from(t).ok().and_then(ratio_at).ok_or_else(|| out_of_range(t.to_string()))?;
    big_int(py, &ratio)
}

/// `TickMath.getTickAtSqrtRatio`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `PoolMathError(code="out_of_range")` outside `MIN_SQRT_RATIO..MAX_SQRT_RATIO`.
#[pyfunction]
pub fn tick_at_sqrt_ratio(sqrt_price_x96: &Bound<'_, PyAny>) -> PyResult<i32> {
    let py = sqrt_price_x96.py();
    let out_of_range = |value| {
        to_pyerr(
            py,
            V3SwapError::ValueOutOfRange { field: "sqrt_price_x96", range: PRICE_RANGE, value },
        )
    };
    let price = uint_arg(sqrt_price_x96, 256)?.map_err(out_of_range)?;
    tick_at(price).ok_or_else(|| out_of_range(price.to_string()))
}

/// Adds the V3 classes, functions and constants to the module.
///
/// # Errors
///
/// If the module refuses an attribute (never in practice).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MIN_TICK", crate::v3::MIN_TICK)?;
    m.add("MAX_TICK", crate::v3::MAX_TICK)?;
    m.add("MIN_SQRT_RATIO", big_int(py, &crate::v3::MIN_SQRT_RATIO)?)?;
    m.add("MAX_SQRT_RATIO", big_int(py, &crate::v3::MAX_SQRT_RATIO)?)?;
    m.add_class::<PyV3Pool>()?;
    m.add_class::<PyV3SwapResult>()?;
    m.add_function(wrap_pyfunction!(v3_amount_out, m)?)?;
    m.add_function(wrap_pyfunction!(v3_amount_in, m)?)?;
    m.add_function(wrap_pyfunction!(sqrt_ratio_at_tick, m)?)?;
    m.add_function(wrap_pyfunction!(tick_at_sqrt_ratio, m)?)?;
    Ok(())
}
