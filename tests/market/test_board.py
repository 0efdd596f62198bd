"""The book board: replicas per (venue, market), gaps and resyncs, and one aggregated book per
pair that is rebuilt only after a change, lazily, with the Rust operator (and its twin, which
must agree).

Measured on this machine (2 shared cores; ``test_measure_apply_and_reaggregate`` prints them):
applying a one-level delta 2.3 us; re-aggregating WETH/USDC over clob_a (20 + 20 levels) and
clob_b (10 + 10) after a delta 75 us, of which the Rust ``aggregate_books`` is 1.3 us and the
rest the changed venue's Decimal -> int conversion (40 levels); reading an unchanged pair
0.2 us.  At 100 book updates/s that is under 1 % of a core, whatever the planning rate.
"""

from __future__ import annotations

import time
from decimal import Decimal
from types import ModuleType

import pytest

from pipeline import ops
from pipeline.market.board import BookBoard
from pipeline.market.replica import Applied
from pipeline.models.market import BookDelta, BookLevel, BookSnapshot
from pipeline.ops import twin

DECIMALS = {"WETH": 18, "USDC": 6}
OPS = [pytest.param(ops, id="rust"), pytest.param(twin.books, id="twin")]


def levels(pairs: dict[str, str]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in pairs.items())


def snap(
    venue: str,
    seq: int,
    bids: dict[str, str],
    asks: dict[str, str],
    *,
    fee: int = 0,
    tick: str = "0.01",
    lot: str = "0.001",
) -> BookSnapshot:
    return BookSnapshot(
        venue=venue,
        market_id="WETH-USDC",
        chain_id=1,
        base="WETH",
        quote="USDC",
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        maker_fee=0,
        taker_fee=fee,
        seq=seq,
        bids=levels(bids),
        asks=levels(asks),
        timestamp_ms=0,
    )


def delta(
    venue: str,
    from_seq: int,
    seq: int,
    bids: dict[str, str] | None = None,
    asks: dict[str, str] | None = None,
) -> BookDelta:
    return BookDelta(
        venue=venue,
        market_id="WETH-USDC",
        from_seq=from_seq,
        seq=seq,
        bids=levels(bids or {}),
        asks=levels(asks or {}),
        timestamp_ms=0,
    )


def board(module: ModuleType = ops) -> BookBoard:
    return BookBoard(DECIMALS.get, module)


@pytest.mark.parametrize("module", OPS)
def test_the_aggregate_is_all_in_and_ranks_venues_by_price_after_fees(module: ModuleType) -> None:
    b = board(module)
    # a: 3000.00 with a 0.10 % fee = 3003.00 all-in; b: 3001.00 with no fee: cheaper after fees.
    b.apply(snap("a", 1, {"2999.00": "1"}, {"3000.00": "2"}, fee=1000))
    b.apply(snap("b", 1, {"2998.00": "1"}, {"3001.00": "1"}, fee=0, tick="0.05"))
    book = b.book("WETH", "USDC")
    assert book is not None
    assert book.price_unit == Decimal("0.01") / 10**6
    asks = book.book.asks
    assert [(book.price(p), book.size(s)) for p, s, _ in asks] == [
        (Decimal("3001.00"), Decimal(1)),
        (Decimal("3003.00"), Decimal(2)),
    ]
    assert [parts for _, _, parts in asks] == [(("b", 10**18),), (("a", 2 * 10**18),)]
    bids = book.book.bids
    assert [book.price(p) for p, _, _ in bids] == [Decimal("2998.00"), Decimal("2996.001")]
    assert book.venues["a"].raw_asks[asks[1][0]] == Decimal("3000.00")
    assert b.book("USDC", "WETH") is None


def test_rust_and_twin_aggregate_alike() -> None:
    books = []
    for module in (ops, twin.books):
        b = board(module)
        b.apply(snap("a", 1, {"2999.99": "1.5", "2999.98": "3"}, {"3000.01": "2"}, fee=500))
        b.apply(
            snap(
                "b", 4, {"2999.95": "0.7"}, {"3000.05": "1", "3000.10": "4"}, fee=1000, tick="0.05"
            )
        )
        b.apply(delta("a", 1, 2, asks={"3000.02": "5"}))
        found = b.book("WETH", "USDC")
        assert found is not None
        books.append((found.book.bids, found.book.asks, found.book.venues))
    assert books[0] == books[1]


def test_an_unchanged_pair_is_not_aggregated_again_and_a_change_rebuilds_only_its_venue() -> None:
    b = board()
    b.apply(snap("a", 1, {"2999.00": "1"}, {"3000.00": "2"}))
    b.apply(snap("b", 1, {"2998.00": "1"}, {"3001.00": "1"}))
    first = b.book("WETH", "USDC")
    assert first is not None
    assert b.book("WETH", "USDC") is first
    assert b.aggregations == 1
    assert b.apply(delta("a", 1, 2, asks={"3000.00": "0", "3000.50": "1"})) is Applied.APPLIED
    second = b.book("WETH", "USDC")
    assert second is not None
    assert second is not first
    assert b.aggregations == 2
    assert second.venues["b"] is first.venues["b"]  # b's book was not converted again
    assert [second.price(p) for p, _, _ in second.book.asks] == [
        Decimal("3000.50"),
        Decimal("3001.00"),
    ]


def test_a_gap_drops_the_venue_until_its_next_snapshot() -> None:
    b = board()
    b.apply(snap("a", 1, {"2999.00": "1"}, {"3000.00": "2"}))
    b.apply(snap("b", 1, {"2998.00": "1"}, {"3001.00": "1"}))
    assert b.apply(delta("a", 3, 4, asks={"3000.00": "1"})) is Applied.GAP
    assert b.gaps == 1
    book = b.book("WETH", "USDC")
    assert book is not None
    assert set(book.venues) == {"b"}
    assert b.apply(delta("a", 4, 5, asks={"3000.00": "1"})) is Applied.WAITING
    assert b.apply(snap("a", 5, {"2999.00": "1"}, {"3000.00": "1"})) is Applied.APPLIED
    book = b.book("WETH", "USDC")
    assert book is not None
    assert set(book.venues) == {"a", "b"}
    assert b.apply(delta("a", 4, 5, asks={"3000.00": "9"})) is Applied.DUPLICATE


def test_an_unknown_asset_has_no_aggregate() -> None:
    b = BookBoard({"USDC": 6}.get)
    b.apply(snap("a", 1, {"2999.00": "1"}, {"3000.00": "2"}))
    assert b.book("WETH", "USDC") is None


def test_measure_apply_and_reaggregate(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the figures in the module docstring; asserts only that a read of an unchanged
    pair does not aggregate."""
    b = board()
    a_asks = {f"{3000 + i * 0.01:.2f}": "1.5" for i in range(1, 21)}
    a_bids = {f"{3000 - i * 0.01:.2f}": "1.5" for i in range(20)}
    b_asks = {f"{3000 + i * 0.05:.2f}": "2" for i in range(1, 11)}
    b_bids = {f"{3000 - i * 0.05:.2f}": "2" for i in range(1, 11)}
    b.apply(snap("clob_a", 1, a_bids, a_asks, fee=500))
    b.apply(snap("clob_b", 1, b_bids, b_asks, fee=1000, tick="0.05"))
    b.book("WETH", "USDC")
    n = 2000
    messages = [delta("clob_a", i, i + 1, asks={"3000.01": str(1 + i % 7)}) for i in range(1, n)]
    t0 = time.perf_counter()
    for m in messages:
        b.apply(m)
    t_apply = (time.perf_counter() - t0) / len(messages)
    t0 = time.perf_counter()
    for i in range(n, 2 * n):
        b.apply(delta("clob_a", i, i + 1, asks={"3000.01": str(1 + i % 7)}))
        b.book("WETH", "USDC")
    t_both = (time.perf_counter() - t0) / n
    count = b.aggregations
    t0 = time.perf_counter()
    for _ in range(n):
        b.book("WETH", "USDC")
    t_read = (time.perf_counter() - t0) / n
    assert b.aggregations == count
    book = b.book("WETH", "USDC")
    assert book is not None
    books = [v.book for v in book.venues.values()]
    t0 = time.perf_counter()
    for _ in range(n):
        ops.aggregate_books(books)
    t_rust = (time.perf_counter() - t0) / n
    with capsys.disabled():
        print(
            f"\napply delta {t_apply * 1e6:.1f} us; apply + re-aggregate "
            f"{(t_both - t_apply) * 1e6:.1f} us; Rust aggregate_books {t_rust * 1e6:.2f} us; "
            f"unchanged read {t_read * 1e6:.2f} us"
        )
