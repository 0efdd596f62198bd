//! Conversions at the Python boundary: ints in, big ints out.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};
use ruint::aliases::U1024;

/// A Python int that must fit in `u128`.
///
/// Returns `Ok(Err(decimal))` when it is an int outside `0..=2**128-1`, so the caller can raise
/// its own named error; `Err` (a `TypeError`) when it is not an int at all.
///
/// # Errors
///
/// `TypeError` from Python when `obj` has no `__index__`.
pub fn u128_arg(obj: &Bound<'_, PyAny>) -> PyResult<Result<u128, String>> {
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
    match obj.extract::<usize>() {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Ok(Err(decimal(obj)?)),
        Err(e) => Err(e),
    }
}

/// `str(operator.index(obj))`, as the twin renders an out-of-range value.
fn decimal(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let index = obj.py().import("operator")?.getattr("index")?.call1((obj,))?;
    Ok(index.str()?.to_string())
}

/// A 1024-bit unsigned integer as a Python int.
///
/// # Errors
///
/// Only if Python fails to allocate.
pub fn big_int<'py>(py: Python<'py>, value: &U1024) -> PyResult<Bound<'py, PyInt>> {
    if let Ok(small) = u128::try_from(value) {
        return small.into_pyobject(py);
    }
    let bytes = PyBytes::new(py, &value.to_le_bytes_trimmed_vec());
    Ok(py
        .get_type::<PyInt>()
        .call_method1("from_bytes", (bytes, "little"))?
        .downcast_into::<PyInt>()?)
}

/// Python's `repr` of a string, so our reprs read exactly like the twin's dataclasses.
///
/// # Errors
///
/// Only if Python fails to allocate.
pub fn repr_str(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_string())
}
