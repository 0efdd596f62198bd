//! `amount_out` and `amount_in` for Python.

use pyo3::prelude::*;

use super::convert::u128_arg;
use super::errors::to_pyerr;
use crate::cp_math;
use crate::error::PoolMathError;

/// Extracts a `u128` argument or raises `PoolMathError(code="out_of_range")`.
fn amount(obj: &Bound<'_, PyAny>, field: &'static str) -> PyResult<u128> {
    u128_arg(obj)?
        .map_err(|value| to_pyerr(obj.py(), PoolMathError::ValueOutOfRange { field, value }))
}

/// Extracts a fee or raises `PoolMathError` (`out_of_range`, then `fee_out_of_range`).
fn fee(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    let fee = amount(obj, "fee")?;
    u32::try_from(fee).map_err(|_| to_pyerr(obj.py(), PoolMathError::FeeOutOfRange { fee }))
}

/// Output of a constant-product swap of `amount_in`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `PoolMathError` as [`cp_math::amount_out`], or `out_of_range` for values outside u128.
#[pyfunction]
#[pyo3(signature = (reserve_in, reserve_out, amount_in, fee))]
pub fn amount_out(
    reserve_in: &Bound<'_, PyAny>,
    reserve_out: &Bound<'_, PyAny>,
    amount_in: &Bound<'_, PyAny>,
    fee: &Bound<'_, PyAny>,
) -> PyResult<u128> {
    let py = reserve_in.py();
    let (ri, ro, ai) = (
        amount(reserve_in, "reserve_in")?,
        amount(reserve_out, "reserve_out")?,
        amount(amount_in, "amount_in")?,
    );
    let fee = self::fee(fee)?;
    cp_math::amount_out(ri, ro, ai, fee).map_err(|e| to_pyerr(py, e))
}

/// Least input that yields `amount_out`; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `PoolMathError` as [`cp_math::amount_in`], or `out_of_range` for values outside u128.
#[pyfunction]
#[pyo3(signature = (reserve_in, reserve_out, amount_out, fee))]
pub fn amount_in(
    reserve_in: &Bound<'_, PyAny>,
    reserve_out: &Bound<'_, PyAny>,
    amount_out: &Bound<'_, PyAny>,
    fee: &Bound<'_, PyAny>,
) -> PyResult<u128> {
    let py = reserve_in.py();
    let (ri, ro, ao) = (
        amount(reserve_in, "reserve_in")?,
        amount(reserve_out, "reserve_out")?,
        amount(amount_out, "amount_out")?,
    );
    let fee = self::fee(fee)?;
    cp_math::amount_in(ri, ro, ao, fee).map_err(|e| to_pyerr(py, e))
}
