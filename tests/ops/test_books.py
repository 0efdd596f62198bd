"""Order books: Book validation, aggregate_books, sweep, water_fill; Rust == twin on random
books.

Behavioural tests run against both implementations (``impl`` fixture); agreement tests build
the same books with both and compare results, errors (class, code, message, venue) included.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.ops as rust
from pipeline.ops.twin import books as twin

IMPLS = {"rust": rust, "python": twin}
SWEEP_FIELDS = ("side", "requested_qty", "filled_qty", "notional", "fees", "avg_price",
                "worst_price", "fills", "venue_fills")  # fmt: skip
WATER_FILL_FIELDS = ("side", "requested_qty", "filled_qty", "pool_qty", "venue_fills",
                     "pool_levels")  # fmt: skip
M64, M128 = 2**64 - 1, 2**128 - 1
Spec = tuple[str, list[tuple[int, int]], list[tuple[int, int]], int]


@pytest.fixture(params=list(IMPLS))
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return IMPLS[request.param]


def plain(value: Any) -> Any:
    """A book, consolidated book, sweep or water-fill as a tuple of its fields."""
    if hasattr(value, "pool_qty"):
        return tuple(getattr(value, f) for f in WATER_FILL_FIELDS)
    if hasattr(value, "requested_qty"):
        return tuple(getattr(value, f) for f in SWEEP_FIELDS)
    if hasattr(value, "venues"):
        return (value.venues, value.fees, value.bids, value.asks)
    if hasattr(value, "venue"):
        return (value.venue, value.bids, value.asks, value.fee)
    return value


def outcome(call: Callable[[ModuleType], Any], ops: ModuleType) -> tuple[Any, ...]:
    try:
        return ("ok", plain(call(ops)))
    except rust.RustOpsError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc), getattr(exc, "venue", None))
    except TypeError:
        return ("TypeError",)


def agree(call: Callable[[ModuleType], Any]) -> tuple[Any, ...]:
    """Runs ``call`` with both implementations, asserts they agree, returns the outcome."""
    r, p = outcome(call, rust), outcome(call, twin)
    assert r == p
    return r


# --- known values ---------------------------------------------------------------------------


def two_venues(ops: ModuleType) -> Any:
    a = ops.Book("a", [(99, 10)], [(100, 3), (102, 10)], fee=3000)
    b = ops.Book("b", [(98, 10)], [(100, 2), (101, 1)])
    return ops.aggregate_books([a, b])


def test_aggregation_orders_venues_by_fee_and_merges_levels(impl: ModuleType) -> None:
    c = two_venues(impl)
    assert c.venues == ("b", "a")
    assert c.fees == (0, 3000)
    assert c.asks == (
        (100, 5, (("b", 2), ("a", 3))),
        (101, 1, (("b", 1),)),
        (102, 10, (("a", 10),)),
    )
    assert c.bids == ((99, 10, (("a", 10),)), (98, 10, (("b", 10),)))


def test_sweep_known_values(impl: ModuleType) -> None:
    s = impl.sweep(two_venues(impl), "buy", 8)
    # b (no fee) before a at 100, then b at 101, then a at 102
    assert s.fills == ((100, 2, "b"), (100, 3, "a"), (101, 1, "b"), (102, 2, "a"))
    assert (s.filled_qty, s.notional) == (8, 200 + 300 + 101 + 204)
    # a: 504 at 0.30 % = 1.512, rounded up to 2; b charges nothing
    assert s.venue_fills == (("b", 3, 301, 0), ("a", 5, 504, 2))
    assert s.fees == 2
    assert (s.avg_price, s.worst_price) == (101, 102)  # 805 / 8 = 100.625, up for a buy


def test_avg_price_rounds_against_the_taker(impl: ModuleType) -> None:
    c = impl.aggregate_books([impl.Book("a", [(10, 1), (9, 2)], [(11, 1), (12, 2)])])
    assert impl.sweep(c, "buy", 3).avg_price == 12  # 35 / 3 = 11.67
    assert impl.sweep(c, "sell", 3).avg_price == 9  # 28 / 3 = 9.33


def test_edge_cases(impl: ModuleType) -> None:
    empty = impl.aggregate_books([])
    assert (empty.venues, empty.bids, empty.asks) == ((), (), ())
    s = impl.sweep(empty, "sell", 5)
    assert (s.filled_qty, s.notional, s.fees, s.avg_price, s.worst_price) == (0, 0, 0, None, None)
    assert (s.fills, s.venue_fills) == ((), ())
    one = impl.aggregate_books([impl.Book("solo", [], [(7, 3), (9, 1)], 999_999)])
    s = impl.sweep(one, "buy", 10**30)  # more than the depth: fills what there is
    assert (s.requested_qty, s.filled_qty, s.avg_price, s.worst_price) == (10**30, 4, 8, 9)
    # the fee is 99.9999 % of 30, rounded up
    assert s.venue_fills == (("solo", 4, 30, 30),)
    # the largest values: a notional beyond 2**128 comes back as an exact int
    huge = impl.aggregate_books([impl.Book("h", [], [(M64, M128)], 1)])
    s = impl.sweep(huge, "buy", M128)
    assert s.notional == M64 * M128
    assert s.fees == -(-M64 * M128 // 1_000_000)


def test_crossed_consolidated_book_is_allowed(impl: ModuleType) -> None:
    c = impl.aggregate_books([impl.Book("a", [(105, 1)], []), impl.Book("b", [], [(100, 1)])])
    assert (c.bids[0][0], c.asks[0][0]) == (105, 100)


@pytest.mark.parametrize(
    ("bids", "asks", "fee", "code"),
    [
        ([(0, 1)], [], 0, "zero_price"),
        ([], [(5, 0)], 0, "zero_size"),
        ([(5, 1), (5, 2)], [], 0, "duplicate_price"),
        ([(5, 1), (6, 2)], [], 0, "unsorted_levels"),
        ([], [(6, 1), (5, 2)], 0, "unsorted_levels"),
        ([], [], 1_000_000, "fee_out_of_range"),
        ([(5, 1)], [(5, 1)], 0, "crossed_book"),
        ([(-1, 1)], [], 0, "out_of_range"),
        ([(2**64, 1)], [], 0, "out_of_range"),
        ([(1, -1)], [], 0, "out_of_range"),
        ([(1, 2**128)], [], 0, "out_of_range"),
        ([], [], -1, "out_of_range"),
        # ranges before shape, bids before asks, levels before fee before cross
        ([(0, 1)], [(2**64, 1)], 0, "out_of_range"),
        ([(5, 1)], [(0, 1)], 10**6, "zero_price"),
        ([(5, 1)], [(4, 1)], 10**6, "fee_out_of_range"),
    ],
)
def test_malformed_books_raise_named_errors(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]], fee: int, code: str
) -> None:
    result = agree(lambda m: m.Book("v", bids, asks, fee))
    assert result[:3] == ("error", "InvalidBookError", code)
    assert result[4] == "v"


def test_error_messages_are_actionable() -> None:
    result = agree(lambda m: m.Book("x", [(10, 1), (11, 1)], []))
    assert result[3] == (
        "venue 'x': bids[1] price 11 follows 10; bids must be best first (strictly decreasing "
        "prices)"
    )
    assert agree(lambda m: m.Book("x", [(10, 1)], [(9, 1)]))[3] == (
        "venue 'x': book is crossed, best bid 10 is not below best ask 9"
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.Book(1, [], []),
        lambda m: m.Book("v", [[5, 1]], []),
        lambda m: m.Book("v", [(5, 1, 2)], []),
        lambda m: m.Book("v", [(5.0, 1)], []),
        lambda m: m.Book("v", "ab", []),
        lambda m: m.Book("v", [], [], fee=None),
        lambda m: m.aggregate_books([object()]),
        lambda m: m.sweep(m.aggregate_books([]), 1, 5),
        lambda m: m.sweep(m.aggregate_books([]), "buy", 1.5),
        lambda m: m.sweep(None, "buy", 5),
    ],
)
def test_type_errors(call: Callable[[ModuleType], Any]) -> None:
    assert agree(call) == ("TypeError",)


def test_aggregation_errors() -> None:
    r = agree(lambda m: m.aggregate_books([m.Book("b", [], [])] + [m.Book("a", [], [])] * 2))
    assert r == ("error", "InvalidBookError", "duplicate_venue",
                 "venue 'a' has more than one book; give one book per venue", "a")  # fmt: skip
    r = agree(lambda m: m.aggregate_books([m.Book("a", [(1, M128)], []),
                                           m.Book("b", [(1, 1)], [], 5)]))  # fmt: skip
    assert r[2:] == ("size_overflow",
                     "venue 'b': the consolidated size of bids at price 1 exceeds 2**128-1",
                     "b")  # fmt: skip


@pytest.mark.parametrize(
    ("side", "qty", "code"),
    [("BUY", 1, "unknown_side"), ("bid", 1, "unknown_side"), ("buy", -1, "out_of_range"),
     ("sell", 2**128, "out_of_range"), ("sell", 0, "zero_quantity"),
     ("up", 0, "unknown_side")],
)  # fmt: skip
def test_sweep_errors(side: str, qty: int, code: str) -> None:
    result = agree(lambda m: m.sweep(two_venues(m), side, qty))
    assert result[:3] == ("error", "SweepError", code)


def test_reprs_match() -> None:
    for build in (
        lambda m: m.Book("a'b", [(3, 1)], [(4, 2)], True),
        two_venues,
        lambda m: m.sweep(two_venues(m), "sell", 12),
        lambda m: m.sweep(m.aggregate_books([]), "buy", 1),
    ):
        assert repr(build(rust)) == repr(build(twin))


def test_values_are_hashable_and_equal_by_value(impl: ModuleType) -> None:
    assert impl.Book("a", [(1, 1)], []) == impl.Book("a", iter([(1, 1)]), (), 0)
    assert len({impl.Book("a", [], []), impl.Book("a", [], [])}) == 1
    assert two_venues(impl) == two_venues(impl)
    assert hash(impl.sweep(two_venues(impl), "buy", 3)) == hash(
        impl.sweep(two_venues(impl), "buy", 3)
    )


# --- properties -----------------------------------------------------------------------------

FEES = st.sampled_from([0, 1, 100, 3000, 999_999])


@st.composite
def book_specs(draw: st.DrawFn) -> list[Spec]:
    """Up to 5 venues' valid books around mid 1000, on a shared tick grid so prices collide."""
    specs = []
    sizes = st.integers(1, 10**6) | st.integers(1, 2**100)
    for i in range(draw(st.integers(0, 5))):
        bid_offsets = sorted(draw(st.sets(st.integers(1, 40), max_size=12)))
        ask_offsets = sorted(draw(st.sets(st.integers(0, 40), max_size=12)))
        bids = [(1000 - o, draw(sizes)) for o in bid_offsets]
        asks = [(1000 + o, draw(sizes)) for o in ask_offsets]
        specs.append((f"v{draw(st.integers(0, 99)):02d}-{i}", bids, asks, draw(FEES)))
    return specs


def build(ops: ModuleType, specs: list[Any]) -> Any:
    return ops.aggregate_books([ops.Book(*spec) for spec in specs])


@settings(max_examples=300, deadline=None)
@given(specs=book_specs(), side=st.sampled_from(["buy", "sell"]),
       qty=st.integers(1, 10**7) | st.integers(1, 2**110))  # fmt: skip
def test_rust_equals_twin_on_random_books_and_sweeps(specs: list[Any], side: str, qty: int) -> None:
    agree(lambda m: build(m, specs))
    result = agree(lambda m: m.sweep(build(m, specs), side, qty))
    assert result[0] == "ok"


@settings(max_examples=200, deadline=None)
@given(
    levels=st.lists(st.tuples(st.integers(-2, 2**64 + 1), st.integers(-1, 3)), max_size=4),
    fee=st.integers(-1, 10**6 + 1),
    split=st.integers(0, 4),
)
def test_rust_equals_twin_on_arbitrary_levels(
    levels: list[tuple[int, int]], fee: int, split: int
) -> None:
    agree(lambda m: m.Book("v", levels[:split], levels[split:], fee))


@settings(max_examples=150, deadline=None)
@given(specs=book_specs())
def test_aggregation_preserves_size_per_price_and_venue(specs: list[Any]) -> None:
    c = build(rust, specs)
    for name in ("bids", "asks"):
        given_parts = sorted((v, p, s) for v, *sides, _ in specs
                             for p, s in sides[name == "asks"])  # fmt: skip
        levels = getattr(c, name)
        prices = [lvl[0] for lvl in levels]
        assert prices == sorted(set(prices), reverse=name == "bids")  # best first, no repeats
        assert all(total == sum(s for _, s in parts) for _, total, parts in levels)
        seen = sorted((v, p, s) for p, _, parts in levels for v, s in parts)
        assert seen == given_parts


def remainder(specs: list[Any], fills: tuple[tuple[int, int, str], ...], side: str) -> list[Any]:
    """The venue books left after ``fills`` were taken from ``side``."""
    taken: dict[tuple[str, int], int] = {}
    for price, qty, venue in fills:
        taken[venue, price] = taken.get((venue, price), 0) + qty
    out = []
    for venue, bids, asks, fee in specs:

        def left(levels: list[tuple[int, int]], venue: str = venue) -> list[tuple[int, int]]:
            rest = [(p, s - taken.get((venue, p), 0)) for p, s in levels]
            return [(p, s) for p, s in rest if s > 0]

        out.append((venue, left(bids) if side == "sell" else bids,
                    left(asks) if side == "buy" else asks, fee))  # fmt: skip
    return out


@settings(max_examples=150, deadline=None)
@given(specs=book_specs(), side=st.sampled_from(["buy", "sell"]),
       q1=st.integers(1, 3 * 10**6), q2=st.integers(1, 3 * 10**6))  # fmt: skip
def test_sweep_properties(specs: list[Any], side: str, q1: int, q2: int) -> None:
    c = build(rust, specs)
    levels = c.asks if side == "buy" else c.bids
    depth = sum(total for _, total, _ in levels)
    once = rust.sweep(c, side, q1 + q2)
    # never more than asked nor than available; every fill within its level's part
    assert once.filled_qty == min(q1 + q2, depth)
    assert sum(q for _, q, _ in once.fills) == once.filled_qty
    available = {(v, p): s for p, _, parts in levels for v, s in parts}
    assert all(0 < q <= available[v, p] for p, q, v in once.fills)
    # best price first
    prices = [p for p, _, _ in once.fills]
    assert prices == sorted(prices, reverse=side == "sell")
    if once.fills:
        lo, hi = min(prices), max(prices)
        assert once.avg_price is not None
        assert lo <= once.avg_price <= hi
        assert once.worst_price == prices[-1]
    # sweeping in two parts == sweeping once
    first = rust.sweep(c, side, q1)
    second = rust.sweep(build(rust, remainder(specs, first.fills, side)), side, q2)
    assert first.filled_qty + second.filled_qty == once.filled_qty
    assert first.notional + second.notional == once.notional
    joined: list[list[Any]] = []
    for p, q, v in first.fills + second.fills:
        if joined and joined[-1][0] == p and joined[-1][2] == v:
            joined[-1][1] += q
        else:
            joined.append([p, q, v])
    assert [tuple(f) for f in joined] == list(once.fills)
    # each venue's fee is rounded up once per sweep: two sweeps pay at most 1 more per venue
    assert once.fees <= first.fees + second.fees <= once.fees + len(c.venues)


# --- water_fill: one order over a book and a pool curve -------------------------------------


def test_water_fill_takes_the_cheapest_units_of_book_and_pool(impl: ModuleType) -> None:
    book = impl.aggregate_books(
        [impl.Book("a", [], [(100, 10), (103, 10)], 0), impl.Book("b", [], [(101, 5)], 0)]
    )
    # The pool: 10 for 1000 (100 a unit, tied with a: the book first), 10 for 1020, 10 for 1100.
    curve = [(10, 1000), (20, 2020), (30, 3120)]
    done = impl.water_fill(book, "buy", 32, curve, 1, 1)
    assert done.pool_levels == ((100, 10), (102, 10), (110, 10))
    assert done.venue_fills == (("a", 10), ("b", 5))
    assert (done.pool_qty, done.filled_qty, done.requested_qty) == (17, 32, 32)
    # The price scale: quote units of 1e-2 per tick, so 100 a unit is 10,000 ticks.
    scaled = impl.water_fill(book, "buy", 5, curve, 100, 1)
    assert scaled.pool_levels[0] == (10_000, 10)
    assert (scaled.pool_qty, scaled.venue_fills) == (0, (("a", 5),))
    # A sell takes the bids, the pool's proceeds rounded down: the pool's 3 at 100, then a's
    # 4 at 99 (ahead of the pool's 99), then 2 of the pool's.
    bids = impl.aggregate_books([impl.Book("a", [(99, 4)], [], 0)])
    sold = impl.water_fill(bids, "sell", 9, [(3, 301), (6, 598)], 1, 1)
    assert sold.pool_levels == ((100, 3), (99, 3))
    assert (sold.pool_qty, sold.venue_fills, sold.filled_qty) == (5, (("a", 4),), 9)


def test_water_fill_errors_agree() -> None:
    def book(m: ModuleType) -> Any:
        return m.aggregate_books([m.Book("a", [], [(100, 10)], 0)])

    assert agree(lambda m: m.water_fill(book(m), "hold", 1, [], 1, 1))[2] == "unknown_side"
    assert agree(lambda m: m.water_fill(book(m), "buy", 0, [], 1, 1))[2] == "zero_quantity"
    assert agree(lambda m: m.water_fill(book(m), "buy", -1, [], 1, 1))[2] == "out_of_range"
    assert agree(lambda m: m.water_fill(book(m), "buy", 1, [(1, -1)], 1, 1))[2] == "out_of_range"
    assert agree(lambda m: m.water_fill(book(m), "buy", 1, [], 1, 0))[3] == (
        "price_den must be an int in 1..=2**128-1, got 0"
    )
    assert agree(lambda m: m.water_fill(book(m), "buy", 1, [], -1, 1))[3] == (
        "price_num must be an int in 1..=2**128-1, got -1"
    )
    assert agree(lambda m: m.water_fill(book(m), "buy", 1, [(1, 2, 3)], 1, 1)) == ("TypeError",)


@settings(max_examples=300, deadline=None)
@given(
    specs=book_specs(),
    side=st.sampled_from(["buy", "sell"]),
    qty=st.integers(1, 10**7),
    steps=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**9)), max_size=10),
    num=st.integers(1, 10**6),
    den=st.integers(1, 10**6),
)
def test_rust_equals_twin_on_random_water_fills(
    specs: list[Any], side: str, qty: int, steps: list[tuple[int, int]], num: int, den: int
) -> None:
    x = c = 0
    curve = []
    for dx, dc in steps:
        x, c = x + dx, c + dc
        curve.append((x, c))
    result = agree(lambda m: m.water_fill(build(m, specs), side, qty, curve, num, den))
    assert result[0] == "ok"
    done = rust.water_fill(build(rust, specs), side, qty, curve, num, den)
    # It is a sweep of the book with the pool as one more venue, placed last at a price.
    pool = list(done.pool_levels)
    # The highest fee puts it last in the venue order (fees do not change what a sweep takes).
    curve_book = ("~pool", pool if side == "sell" else [], pool if side == "buy" else [], 999_999)
    with_pool = [*specs, curve_book] if pool else specs
    swept = rust.sweep(
        rust.aggregate_books([rust.Book(*spec) for spec in with_pool]),
        side,
        qty,
    )
    assert done.filled_qty == swept.filled_qty
    taken = {v: q for v, q, _n, _f in swept.venue_fills}
    assert done.pool_qty == taken.pop("~pool", 0)
