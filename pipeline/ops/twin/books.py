"""Twin of the order-book operators (``rust_ops/src/books``, ``python/books.rs``): same names,
same fields, same results, same errors (class, code, message) and reprs. Units, as in the
Rust crate: prices are ints in ticks (``1..=2**64-1``), sizes and quantities ints in base units
(``1..=2**128-1``), fees ints in hundredths of a basis point; a notional is ``Σ price·qty``.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, SupportsIndex

from pipeline._rust_ops import InvalidBookError, SweepError
from pipeline.ops.twin.convert import U64_MAX, U64_RANGE, U128_MAX, U128_RANGE
from pipeline.ops.twin.error import FEE_DENOMINATOR, error

__all__ = [
    "Book",
    "ConsolidatedBook",
    "InvalidBookError",
    "Sweep",
    "SweepError",
    "WaterFill",
    "aggregate_books",
    "sweep",
    "water_fill",
]


# (price, size), best first
Level = tuple[int, int]
# (price, total size, ((venue, size), ...)), parts in the book's venue order
ConsolidatedLevel = tuple[int, int, tuple[tuple[str, int], ...]]


def _book_error(venue: str, code: str, message: str, prefix: bool = True) -> InvalidBookError:
    err = error(InvalidBookError, code, f"venue '{venue}': {message}" if prefix else message)
    err.venue = venue
    return err


def _sweep_error(code: str, message: str) -> SweepError:
    return error(SweepError, code, message)


def _levels(venue: str, name: str, levels: Iterable[Any]) -> tuple[Level, ...]:
    """Type and range checks, in the binding's order (``rust_ops/src/python/books.rs``)."""
    out = []
    for index, item in enumerate(levels):
        if not isinstance(item, tuple):
            raise TypeError(f"{name}[{index}]: expected a (price, size) tuple")
        if len(item) != 2:
            raise TypeError(f"{name}[{index}] must be a (price, size) tuple, got {len(item)} items")
        price = operator.index(item[0])
        if not 0 <= price <= U64_MAX:
            raise _book_error(
                venue,
                "out_of_range",
                f"{name}[{index}].price must be an int in {U64_RANGE}, got {price}",
            )
        size = operator.index(item[1])
        if not 0 <= size <= U128_MAX:
            raise _book_error(
                venue,
                "out_of_range",
                f"{name}[{index}].size must be an int in {U128_RANGE}, got {size}",
            )
        out.append((price, size))
    return tuple(out)


def _check_side(venue: str, name: str, levels: tuple[Level, ...]) -> None:
    """``book.rs::check_side``: positive prices and sizes, strictly best first."""
    bids = name == "bids"
    previous: int | None = None
    for index, (price, size) in enumerate(levels):
        if price == 0:
            raise _book_error(
                venue, "zero_price", f"{name}[{index}] has price 0; prices are positive"
            )
        if size == 0:
            raise _book_error(
                venue,
                "zero_size",
                f"{name}[{index}] at price {price} has size 0; leave empty levels out",
            )
        if previous is not None:
            if price == previous:
                raise _book_error(
                    venue,
                    "duplicate_price",
                    f"{name}[{index}] repeats price {price}; merge the sizes into one level",
                )
            if (price > previous) if bids else (price < previous):
                order = "decreasing" if bids else "increasing"
                raise _book_error(
                    venue,
                    "unsorted_levels",
                    f"{name}[{index}] price {price} follows {previous}; {name} must be best "
                    f"first (strictly {order} prices)",
                )
        previous = price


@dataclass(frozen=True, slots=True)
class Book:
    """Twin of ``pipeline.ops.Book``."""

    venue: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    fee: int = 0

    def __init__(
        self, venue: str, bids: Iterable[Level], asks: Iterable[Level], fee: SupportsIndex = 0
    ) -> None:
        if not isinstance(venue, str):
            raise TypeError("argument 'venue': expected str")
        fee_value = operator.index(fee)
        bid_levels = _levels(venue, "bids", bids)
        ask_levels = _levels(venue, "asks", asks)
        if not 0 <= fee_value <= U128_MAX:
            raise _book_error(
                venue, "out_of_range", f"fee must be an int in {U128_RANGE}, got {fee_value}"
            )
        _check_side(venue, "bids", bid_levels)
        _check_side(venue, "asks", ask_levels)
        if fee_value >= FEE_DENOMINATOR:
            raise _book_error(
                venue,
                "fee_out_of_range",
                f"fee {fee_value} is outside 0..=999999 "
                "(hundredths of a basis point: 3000 = 0.30 %)",
            )
        if bid_levels and ask_levels and bid_levels[0][0] >= ask_levels[0][0]:
            raise _book_error(
                venue,
                "crossed_book",
                f"book is crossed, best bid {bid_levels[0][0]} is not "
                f"below best ask {ask_levels[0][0]}",
            )
        for name, value in (
            ("venue", venue),
            ("bids", bid_levels),
            ("asks", ask_levels),
            ("fee", fee_value),
        ):
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True, repr=False)
class ConsolidatedBook:
    """Twin of ``pipeline.ops.ConsolidatedBook``."""

    venues: tuple[str, ...]
    fees: tuple[int, ...]
    bids: tuple[ConsolidatedLevel, ...]
    asks: tuple[ConsolidatedLevel, ...]

    def __repr__(self) -> str:
        return (
            f"ConsolidatedBook(venues={self.venues!r}, {len(self.bids)} bid levels, "
            f"{len(self.asks)} ask levels)"
        )


@dataclass(frozen=True, slots=True)
class Sweep:
    """Twin of ``pipeline.ops.Sweep``."""

    side: str
    requested_qty: int
    filled_qty: int
    notional: int
    fees: int
    avg_price: int | None
    worst_price: int | None
    fills: tuple[tuple[int, int, str], ...]
    venue_fills: tuple[tuple[str, int, int, int], ...]


def _merge(ordered: list[Book], name: str) -> tuple[ConsolidatedLevel, ...]:
    # (price, venue rank, size), concatenated in venue order; the stable sort keeps that order
    # within a price (reverse=True is stable too).
    entries = [(p, rank, s) for rank, b in enumerate(ordered) for p, s in getattr(b, name)]
    entries.sort(key=lambda e: e[0], reverse=name == "bids")
    levels: list[ConsolidatedLevel] = []
    price, total = -1, 0
    parts: list[tuple[str, int]] = []
    for p, rank, s in entries:
        if p != price:
            if parts:
                levels.append((price, total, tuple(parts)))
            price, total, parts = p, 0, []
        total += s
        if total > U128_MAX:
            raise _book_error(
                ordered[rank].venue,
                "size_overflow",
                f"the consolidated size of {name} at price {p} exceeds 2**128-1",
            )
        parts.append((ordered[rank].venue, s))
    if parts:
        levels.append((price, total, tuple(parts)))
    return tuple(levels)


def aggregate_books(books: Iterable[Book]) -> ConsolidatedBook:
    """Twin of ``pipeline.ops.aggregate_books``."""
    given = list(books)
    for b in given:
        if not isinstance(b, Book):
            raise TypeError(f"'{type(b).__name__}' object is not an instance of 'Book'")
    names = sorted(b.venue for b in given)
    for name, following in itertools.pairwise(names):
        if name == following:
            raise _book_error(
                name,
                "duplicate_venue",
                f"venue '{name}' has more than one book; give one book per venue",
                prefix=False,
            )
    ordered = sorted(given, key=lambda b: (b.fee, b.venue))
    bids = _merge(ordered, "bids")
    asks = _merge(ordered, "asks")
    return ConsolidatedBook(
        tuple(b.venue for b in ordered), tuple(b.fee for b in ordered), bids, asks
    )


def sweep(book: ConsolidatedBook, side: str, qty: SupportsIndex) -> Sweep:
    """Twin of ``pipeline.ops.sweep``."""
    if not isinstance(book, ConsolidatedBook):
        raise TypeError("argument 'book': expected ConsolidatedBook")
    if not isinstance(side, str):
        raise TypeError("argument 'side': expected str")
    if side not in ("buy", "sell"):
        raise _sweep_error("unknown_side", f"side must be 'buy' or 'sell', got '{side}'")
    want = operator.index(qty)
    if not 0 <= want <= U128_MAX:
        raise _sweep_error("out_of_range", f"qty must be an int in {U128_RANGE}, got {want}")
    if want == 0:
        raise _sweep_error("zero_quantity", "qty must be positive, got 0")
    rank = {v: i for i, v in enumerate(book.venues)}
    per_venue = [[0, 0] for _ in book.venues]  # [qty, notional] by rank
    fills: list[tuple[int, int, str]] = []
    remaining = want
    for price, _total, parts in book.asks if side == "buy" else book.bids:
        if remaining == 0:
            break
        for venue, size in parts:
            if remaining == 0:
                break
            take = min(size, remaining)
            remaining -= take
            fills.append((price, take, venue))
            slot = per_venue[rank[venue]]
            slot[0] += take
            slot[1] += price * take
    venue_fills = tuple(
        (venue, q, n, -(-n * fee // FEE_DENOMINATOR))  # the fee rounded up
        for venue, fee, (q, n) in zip(book.venues, book.fees, per_venue, strict=True)
        if q > 0
    )
    filled = want - remaining
    notional = sum(f[2] for f in venue_fills)
    avg: int | None = None
    if filled:
        avg = -(-notional // filled) if side == "buy" else notional // filled
    return Sweep(
        side=side,
        requested_qty=want,
        filled_qty=filled,
        notional=notional,
        fees=sum(f[3] for f in venue_fills),
        avg_price=avg,
        worst_price=fills[-1][0] if fills else None,
        fills=tuple(fills),
        venue_fills=venue_fills,
    )


@dataclass(frozen=True, slots=True)
class WaterFill:
    """Twin of ``pipeline.ops.WaterFill`` (``books/water_fill.rs``)."""

    side: str
    requested_qty: int
    filled_qty: int
    pool_qty: int
    venue_fills: tuple[tuple[str, int], ...]
    pool_levels: tuple[Level, ...]


def _pool_levels(side: str, curve: list[tuple[int, int]], num: int, den: int) -> list[Level]:
    """``water_fill.rs::pool_levels``."""
    buy = side == "buy"
    levels: list[Level] = []
    x0 = c0 = 0
    for x, c in curve:
        if x <= x0:
            continue
        numerator, denominator = max(c - c0, 0) * num, (x - x0) * den
        price = min(-(-numerator // denominator) if buy else numerator // denominator, U64_MAX)
        if levels:
            last = levels[-1][0]
            price = max(price, last) if buy else min(price, last)
        if price == 0:
            break
        if levels and levels[-1][0] == price:
            levels[-1] = (price, levels[-1][1] + x - x0)
        else:
            levels.append((price, x - x0))
        x0, c0 = x, c
    return levels


def _curve_int(value: Any, field: str, shown: str = U128_RANGE) -> int:
    """An int in ``0..=2**128-1`` (``shown``: the range the message names; a 0 where only
    ``1..`` is allowed is refused later, after the quantity, as ``water_fill.rs`` does)."""
    number = operator.index(value)
    if not 0 <= number <= U128_MAX:
        raise _sweep_error("out_of_range", f"{field} must be an int in {shown}, got {number}")
    return number


def water_fill(
    book: ConsolidatedBook,
    side: str,
    qty: SupportsIndex,
    curve: Iterable[Any],
    price_num: SupportsIndex,
    price_den: SupportsIndex,
) -> WaterFill:
    """Twin of ``pipeline.ops.water_fill``."""
    if not isinstance(book, ConsolidatedBook):
        raise TypeError("argument 'book': expected ConsolidatedBook")
    if not isinstance(side, str):
        raise TypeError("argument 'side': expected str")
    if side not in ("buy", "sell"):
        raise _sweep_error("unknown_side", f"side must be 'buy' or 'sell', got '{side}'")
    want = operator.index(qty)
    if not 0 <= want <= U128_MAX:
        raise _sweep_error("out_of_range", f"qty must be an int in {U128_RANGE}, got {want}")
    points = []
    for index, item in enumerate(curve):
        if not isinstance(item, tuple):
            raise TypeError(f"curve[{index}]: expected an (x, c) tuple")
        if len(item) != 2:
            raise TypeError(f"curve[{index}] must be an (x, c) tuple, got {len(item)} items")
        points.append(
            (
                _curve_int(item[0], f"curve[{index}].x"),
                _curve_int(item[1], f"curve[{index}].c"),
            )
        )
    num = _curve_int(price_num, "price_num", "1..=2**128-1")
    den = _curve_int(price_den, "price_den", "1..=2**128-1")
    if want == 0:
        raise _sweep_error("zero_quantity", "qty must be positive, got 0")
    for field, value in (("price_num", num), ("price_den", den)):
        if value == 0:
            raise _sweep_error("out_of_range", f"{field} must be an int in 1..=2**128-1, got 0")
    pool = _pool_levels(side, points, num, den)
    levels = book.asks if side == "buy" else book.bids
    taken = dict.fromkeys(book.venues, 0)
    remaining, pool_qty, i, j = want, 0, 0, 0
    while remaining > 0:
        if i < len(levels) and j < len(pool):
            price = levels[i][0]
            from_book = price <= pool[j][0] if side == "buy" else price >= pool[j][0]
        elif i < len(levels) or j < len(pool):
            from_book = i < len(levels)
        else:
            break
        if from_book:
            for venue, size in levels[i][2]:
                take = min(size, remaining)
                taken[venue] += take
                remaining -= take
                if remaining == 0:
                    break
            i += 1
        else:
            take = min(pool[j][1], remaining)
            pool_qty += take
            remaining -= take
            j += 1
    return WaterFill(
        side=side,
        requested_qty=want,
        filled_qty=want - remaining,
        pool_qty=pool_qty,
        venue_fills=tuple((v, q) for v, q in taken.items() if q > 0),
        pool_levels=tuple(pool),
    )
