//! Conversions at the Python boundary: ints in, big ints out.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};
use ruint::Uint;

/// A Python int that must fit in `u128`.
///
/// Returns `Ok(Err(decimal))` when it is an int outside `0..=2**128-1`, so the caller can raise
/// its own named error; `Err` (a `TypeError`) when it is not an int at all.
///
/// # Errors
///
/// `TypeError` from Python when `obj` has no `__index__`.
pub fn u128_arg(obj: &Bound<'_, PyAny>) -> PyResult<Result<u128, String>> {
    let obj = &as_int(obj)?;
    match obj.extract::<u128>() {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Ok(Err(decimal(obj)?)),
        Err(e) => Err(e),
    }
}

/// A Python int that must fit in `usize` (as [`u128_arg`]).
///
/// # Errors
///
/// `TypeError` from Python when `obj` has no `__index__`.
pub fn usize_arg(obj: &Bound<'_, PyAny>) -> PyResult<Result<usize, String>> {
    let obj = &as_int(obj)?;
    match obj.extract::<usize>() {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Ok(Err(decimal(obj)?)),
        Err(e) => Err(e),
    }
}

/// A `max_hops`-like count argument: `Err(decimal)` when the int does not fit `usize`, kept for
/// the caller to raise its named error. A non-int is a `TypeError` at extraction, as in the twin
/// (`None` included: there is no "use the default" sentinel).
#[derive(Debug, Clone)]
pub struct CountArg(pub Result<usize, String>);

impl<'py> FromPyObject<'py> for CountArg {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        usize_arg(obj).map(Self)
    }
}

/// `obj` itself if it is an exact `int`, else `operator.index(obj)` (a `TypeError` for
/// non-ints, as in the twin). PyO3's 128-bit extraction under abi3 shifts the object itself, so
/// int-likes (`bool`, numpy integers, anything with `__index__`) are converted first.
fn as_int<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if obj.is_exact_instance_of::<PyInt>() {
        return Ok(obj.clone());
    }
    obj.py().import("operator")?.getattr("index")?.call1((obj,))
}

/// The decimal rendering of an int, as the twin writes an out-of-range value.
fn decimal(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(obj.str()?.to_string())
}

/// An unsigned integer of any width (`U256` prices and amounts, mid prices) as a Python int.
///
/// # Errors
///
/// Only if Python fails to allocate.
pub fn big_int<'py, const BITS: usize, const LIMBS: usize>(
    py: Python<'py>,
    value: &Uint<BITS, LIMBS>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(small) = u128::try_from(value) {
        return Ok(small.into_pyobject(py)?.into_any());
    }
    let bytes = PyBytes::new(py, &value.to_le_bytes_trimmed_vec());
    py.get_type::<PyInt>().call_method1("from_bytes", (bytes, "little"))
}

/// Python's `repr` of a string, so our reprs read exactly like the twin's dataclasses.
///
/// # Errors
///
/// Only if Python fails to allocate.
pub fn repr_str(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_string())
}
