//! `Book`, `ConsolidatedBook`, `Sweep`, `aggregate_books` and `sweep` for Python, and the
//! `InvalidBookError` / `SweepError` exceptions.
//!
//! Prices are ints (ticks, `1..=2**64-1`), sizes and quantities ints (base units,
//! `1..=2**128-1`), fees ints (hundredths of a basis point). Aggregation and sweeps run with
//! the GIL released. Reprs match the twin's (`pipeline/ops/twin/books.py`) character for
//! character.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyTuple};
use ruint::aliases::U256;

use super::convert::{repr_str, u128_arg};
use super::errors::RustOpsError;
use crate::books::{
    aggregate_books as aggregate, sweep as sweep_book, water_fill as fill_water, Book, BookError,
    ConsolidatedBook, ConsolidatedSide, Side, Sweep, SweepError as SweepFailure, WaterFill,
};

create_exception!(
    pipeline._rust_ops,
    InvalidBookError,
    RustOpsError,
    "A venue's book, or a set of books, cannot be used (value out of range, zero price or size, \
     duplicate price, unsorted levels, fee out of range, crossed book, duplicate venue, size \
     overflow). `venue` names the venue."
);
create_exception!(
    pipeline._rust_ops,
    SweepError,
    RustOpsError,
    "A sweep cannot be carried out as asked (unknown side, quantity out of range or zero)."
);

/// Adds the classes, functions and exceptions to the module.
///
/// # Errors
///
/// If the module refuses an attribute (never in practice).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("InvalidBookError", py.get_type::<InvalidBookError>())?;
    m.add("SweepError", py.get_type::<SweepError>())?;
    m.add_class::<PyBook>()?;
    m.add_class::<PyConsolidatedBook>()?;
    m.add_class::<PySweep>()?;
    m.add_class::<PyWaterFill>()?;
    m.add_function(wrap_pyfunction!(aggregate_books, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(water_fill, m)?)?;
    Ok(())
}

fn book_err(py: Python<'_>, err: BookError) -> PyErr {
    let pyerr = InvalidBookError::new_err(err.to_string());
    let value = pyerr.value(py);
    // Setting an attribute on a fresh exception cannot fail; if it did, the class is still right.
    let _ = value.setattr("code", err.code());
    let _ = value.setattr("venue", err.venue());
    pyerr
}

fn sweep_err(py: Python<'_>, err: SweepFailure) -> PyErr {
    let pyerr = SweepError::new_err(err.to_string());
    let _ = pyerr.value(py).setattr("code", err.code());
    pyerr
}

const U64_RANGE: &str = "0..=2**64-1";
const U128_RANGE: &str = "0..=2**128-1";

/// Levels from any iterable of `(price, size)` tuples; a non-tuple, a tuple of another length
/// or a non-int is a `TypeError`, an int out of range an `InvalidBookError`.
fn levels(venue: &str, name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<(u64, u128)>> {
    let py = obj.py();
    let out_of_range = |field: String, range: &'static str, value: String| {
        book_err(py, BookError::ValueOutOfRange { venue: venue.to_owned(), field, range, value })
    };
    let mut out = Vec::new();
    for (index, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        let pair = item.downcast::<PyTuple>()?;
        if pair.len() != 2 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{name}[{index}] must be a (price, size) tuple, got {} items",
                pair.len()
            )));
        }
        let price = match u128_arg(&pair.get_item(0)?)? {
            Ok(p) => u64::try_from(p).map_err(|_| p.to_string()),
            Err(decimal) => Err(decimal),
        }
        .map_err(|v| out_of_range(format!("{name}[{index}].price"), U64_RANGE, v))?;
        let size = u128_arg(&pair.get_item(1)?)?
            .map_err(|v| out_of_range(format!("{name}[{index}].size"), U128_RANGE, v))?;
        out.push((price, size));
    }
    Ok(out)
}

fn level_tuples<'py>(
    py: Python<'py>,
    levels: impl ExactSizeIterator<Item = (u64, u128)>,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, levels)
}

/// A U256 as a Python int.
fn u256_int<'py>(py: Python<'py>, value: U256) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(small) = u128::try_from(value) {
        return Ok(small.into_pyobject(py)?.into_any());
    }
    let bytes = PyBytes::new(py, &value.to_le_bytes::<32>());
    py.get_type::<PyInt>().call_method1("from_bytes", (bytes, "little"))
}

/// A fee argument: an int (else a `TypeError` at extraction, before the levels are read),
/// `Err(decimal)` when outside `0..=2**128-1`, kept for the constructor to raise its named error.
#[derive(Debug, Clone)]
pub struct FeeArg(Result<u128, String>);

impl<'py> FromPyObject<'py> for FeeArg {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        u128_arg(obj).map(Self)
    }
}

/// One venue's L2 book (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "Book", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyBook(pub Arc<Book>);

#[pymethods]
impl PyBook {
    #[new]
    #[pyo3(signature = (venue, bids, asks, fee = FeeArg(Ok(0))))]
    fn new(
        venue: String,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        fee: FeeArg,
    ) -> PyResult<Self> {
        let py = bids.py();
        let bid_levels = levels(&venue, "bids", bids)?;
        let ask_levels = levels(&venue, "asks", asks)?;
        let fee = fee.0.map_err(|value| {
            let (venue, field) = (venue.clone(), "fee".to_owned());
            book_err(py, BookError::ValueOutOfRange { venue, field, range: U128_RANGE, value })
        })?;
        Book::new(venue, bid_levels, ask_levels, fee)
            .map(|b| Self(Arc::new(b)))
            .map_err(|e| book_err(py, e))
    }

    #[getter]
    fn venue(&self) -> &str {
        self.0.venue()
    }

    #[getter]
    fn bids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        level_tuples(py, self.0.bids())
    }

    #[getter]
    fn asks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        level_tuples(py, self.0.asks())
    }

    #[getter]
    fn fee(&self) -> u32 {
        self.0.fee()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Book(venue={}, bids={}, asks={}, fee={})",
            repr_str(py, self.0.venue())?,
            self.bids(py)?.repr()?,
            self.asks(py)?.repr()?,
            self.0.fee()
        ))
    }
}

/// Per-venue books merged into one (see `pipeline._rust_ops.pyi`).
#[pyclass(name = "ConsolidatedBook", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyConsolidatedBook(pub Arc<ConsolidatedBook>);

impl PyConsolidatedBook {
    /// `((price, total, ((venue, size), ...)), ...)`, best price first.
    fn side_tuples<'py>(
        &self,
        py: Python<'py>,
        side: ConsolidatedSide<'_>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let venues = self.0.venues();
        let levels = PyList::empty(py);
        for i in 0..side.len() {
            let parts = PyTuple::new(py, side.parts(i).map(|(v, s)| (venues[v].as_str(), s)))?;
            levels.append((side.price(i), side.total(i), parts))?;
        }
        Ok(levels.to_tuple())
    }
}

#[pymethods]
impl PyConsolidatedBook {
    #[getter]
    fn venues<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0.venues())
    }

    #[getter]
    fn fees<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0.fees())
    }

    #[getter]
    fn bids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.side_tuples(py, self.0.bids())
    }

    #[getter]
    fn asks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.side_tuples(py, self.0.asks())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ConsolidatedBook(venues={}, {} bid levels, {} ask levels)",
            self.venues(py)?.repr()?,
            self.0.bids().len(),
            self.0.asks().len()
        ))
    }
}

/// The result of a sweep (see `pipeline._rust_ops.pyi`); venue indices are resolved to names
/// through the swept book.
#[pyclass(name = "Sweep", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone)]
pub struct PySweep {
    sweep: Sweep,
    book: Arc<ConsolidatedBook>,
}

impl PartialEq for PySweep {
    fn eq(&self, other: &Self) -> bool {
        self.sweep == other.sweep && self.book.venues() == other.book.venues()
    }
}

impl Eq for PySweep {}

impl Hash for PySweep {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sweep.hash(state);
    }
}

#[pymethods]
impl PySweep {
    #[getter]
    fn side(&self) -> &'static str {
        self.sweep.side.name()
    }

    #[getter]
    fn requested_qty(&self) -> u128 {
        self.sweep.requested_qty
    }

    #[getter]
    fn filled_qty(&self) -> u128 {
        self.sweep.filled_qty
    }

    #[getter]
    fn notional<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        u256_int(py, self.sweep.notional)
    }

    #[getter]
    fn fees<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        u256_int(py, self.sweep.fees)
    }

    #[getter]
    fn avg_price(&self) -> Option<u64> {
        self.sweep.avg_price
    }

    #[getter]
    fn worst_price(&self) -> Option<u64> {
        self.sweep.worst_price
    }

    #[getter]
    fn fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let venues = self.book.venues();
        PyTuple::new(
            py,
            self.sweep.fills.iter().map(|f| (f.price, f.qty, venues[f.venue].as_str())),
        )
    }

    #[getter]
    fn venue_fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let venues = self.book.venues();
        let rows = PyList::empty(py);
        for f in &self.sweep.venue_fills {
            let (notional, fee) = (u256_int(py, f.notional)?, u256_int(py, f.fee)?);
            rows.append((venues[f.venue].as_str(), f.qty, notional, fee))?;
        }
        Ok(rows.to_tuple())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let s = &self.sweep;
        let opt = |v: Option<u64>| v.map_or_else(|| "None".to_owned(), |p| p.to_string());
        Ok(format!(
            "Sweep(side={}, requested_qty={}, filled_qty={}, notional={}, fees={}, \
             avg_price={}, worst_price={}, fills={}, venue_fills={})",
            repr_str(py, s.side.name())?,
            s.requested_qty,
            s.filled_qty,
            self.notional(py)?,
            self.fees(py)?,
            opt(s.avg_price),
            opt(s.worst_price),
            self.fills(py)?.repr()?,
            self.venue_fills(py)?.repr()?,
        ))
    }
}

/// Merges per-venue books; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `InvalidBookError` (`duplicate_venue`, `size_overflow`); `TypeError` for a non-`Book`.
#[pyfunction]
pub fn aggregate_books(py: Python<'_>, books: &Bound<'_, PyAny>) -> PyResult<PyConsolidatedBook> {
    let books: Vec<Arc<Book>> = books
        .try_iter()?
        .map(|item| Ok(item?.downcast::<PyBook>()?.get().0.clone()))
        .collect::<PyResult<_>>()?;
    py.allow_threads(|| aggregate(&books))
        .map(|c| PyConsolidatedBook(Arc::new(c)))
        .map_err(|e| book_err(py, e))
}

/// Sweeps a consolidated book; see `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `SweepError` (`unknown_side`, `out_of_range`, `zero_quantity`); `TypeError` for a wrong type.
#[pyfunction]
pub fn sweep(
    py: Python<'_>,
    book: &Bound<'_, PyConsolidatedBook>,
    side: &str,
    qty: &Bound<'_, PyAny>,
) -> PyResult<PySweep> {
    let side = Side::parse(side).map_err(|e| sweep_err(py, e))?;
    let qty =
        u128_arg(qty)?.map_err(|value| sweep_err(py, SweepFailure::ValueOutOfRange { value }))?;
    let book = book.get().0.clone();
    let done = py.allow_threads(|| sweep_book(&book, side, qty)).map_err(|e| sweep_err(py, e))?;
    Ok(PySweep { sweep: done, book })
}

/// The result of a water-fill (see `pipeline._rust_ops.pyi`); venue indices are resolved to
/// names through the book.
#[pyclass(name = "WaterFill", module = "pipeline._rust_ops", frozen, eq, hash)]
#[derive(Debug, Clone)]
pub struct PyWaterFill {
    fill: WaterFill,
    book: Arc<ConsolidatedBook>,
}

impl PartialEq for PyWaterFill {
    fn eq(&self, other: &Self) -> bool {
        self.fill == other.fill && self.book.venues() == other.book.venues()
    }
}

impl Eq for PyWaterFill {}

impl Hash for PyWaterFill {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fill.hash(state);
    }
}

#[pymethods]
impl PyWaterFill {
    #[getter]
    fn side(&self) -> &'static str {
        self.fill.side.name()
    }

    #[getter]
    fn requested_qty(&self) -> u128 {
        self.fill.requested_qty
    }

    #[getter]
    fn filled_qty(&self) -> u128 {
        self.fill.filled_qty
    }

    #[getter]
    fn pool_qty(&self) -> u128 {
        self.fill.pool_qty
    }

    #[getter]
    fn venue_fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let venues = self.book.venues();
        PyTuple::new(py, self.fill.venue_fills.iter().map(|&(v, q)| (venues[v].as_str(), q)))
    }

    #[getter]
    fn pool_levels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.fill.pool_levels.iter().copied())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let f = &self.fill;
        Ok(format!(
            "WaterFill(side={}, requested_qty={}, filled_qty={}, pool_qty={}, venue_fills={}, \
             pool_levels={})",
            repr_str(py, f.side.name())?,
            f.requested_qty,
            f.filled_qty,
            f.pool_qty,
            self.venue_fills(py)?.repr()?,
            self.pool_levels(py)?.repr()?,
        ))
    }
}

/// Water-fills one order over a consolidated book and a pool curve; see
/// `pipeline._rust_ops.pyi`.
///
/// # Errors
///
/// `SweepError` (`unknown_side`, `out_of_range`, `zero_quantity`); `TypeError` for a wrong
/// type or a curve point that is not an `(x, c)` tuple.
#[pyfunction]
pub fn water_fill(
    py: Python<'_>,
    book: &Bound<'_, PyConsolidatedBook>,
    side: &str,
    qty: &Bound<'_, PyAny>,
    curve: &Bound<'_, PyAny>,
    price_num: &Bound<'_, PyAny>,
    price_den: &Bound<'_, PyAny>,
) -> PyResult<PyWaterFill> {
    let side = Side::parse(side).map_err(|e| sweep_err(py, e))?;
    let qty =
        u128_arg(qty)?.map_err(|value| sweep_err(py, SweepFailure::ValueOutOfRange { value }))?;
    let range = |field: String, range: &'static str| {
        move |value: String| sweep_err(py, SweepFailure::CurveOutOfRange { field, range, value })
    };
    let mut points = Vec::new();
    for (index, item) in curve.try_iter()?.enumerate() {
        let item = item?;
        let pair = item.downcast::<PyTuple>()?;
        if pair.len() != 2 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "curve[{index}] must be an (x, c) tuple, got {} items",
                pair.len()
            )));
        }
        let x = u128_arg(&pair.get_item(0)?)?
            .map_err(range(format!("curve[{index}].x"), U128_RANGE))?;
        let c = u128_arg(&pair.get_item(1)?)?
            .map_err(range(format!("curve[{index}].c"), U128_RANGE))?;
        points.push((x, c));
    }
    let num = u128_arg(price_num)?.map_err(range("price_num".into(), "1..=2**128-1"))?;
    let den = u128_arg(price_den)?.map_err(range("price_den".into(), "1..=2**128-1"))?;
    let book = book.get().0.clone();
    let fill = py
        .allow_threads(|| fill_water(&book, side, qty, &points, num, den))
        .map_err(|e| sweep_err(py, e))?;
    Ok(PyWaterFill { fill, book })
}
