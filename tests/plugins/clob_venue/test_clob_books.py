"""L2 publication: snapshots, sequenced deltas, gap detection and resync; and a replica fed by
a real venue's book source equals the venue's book."""

from __future__ import annotations

from decimal import Decimal

from clob_support import Clock, OpenVenue, market
from pydantic import TypeAdapter

from pipeline.models.market import BookDelta, BookLevel, BookMessage, BookSnapshot
from plugins.clob_venue import (
    BookPublication,
    BookReplica,
    BookSource,
    BookState,
    OrderType,
    Side,
    TimeInForce,
)
from plugins.clob_venue.books import Applied, MarketInfo, book_key, book_value, level_changes

INFO = MarketInfo(
    "clob_a", "WETH-USDC", 1, "WETH", "USDC", Decimal("0.01"), Decimal("0.001"), -200, 1000
)


def state(
    seq: int, bids: tuple[tuple[int, int], ...] = (), asks: tuple[tuple[int, int], ...] = ()
) -> BookState:
    return BookState(seq, bids, asks)


def test_level_changes_sets_new_sizes_and_zeroes_removed_levels() -> None:
    old = ((100, 5), (99, 3))
    assert level_changes(old, ((100, 4), (98, 1))) == ((98, 1), (99, 0), (100, 4))
    assert level_changes(old, old) == ()


def test_first_a_snapshot_then_deltas_then_a_snapshot_on_the_interval() -> None:
    publication = BookPublication({"WETH-USDC": INFO}, snapshot_interval_ms=1000)
    [first] = publication.messages({"WETH-USDC": state(3, ((300_000, 1000),))}, 0)
    assert isinstance(first, BookSnapshot)
    assert (first.seq, first.bids[0].price, first.bids[0].size) == (
        3,
        Decimal("3000.00"),
        Decimal("1.000"),
    )
    assert publication.messages({"WETH-USDC": state(3, ((300_000, 1000),))}, 10) == []
    [delta] = publication.messages(
        {"WETH-USDC": state(5, ((300_001, 10), (300_000, 1000)), ((300_100, 7),))}, 20
    )
    assert isinstance(delta, BookDelta)
    assert (delta.from_seq, delta.seq) == (3, 5)
    assert [(lv.price, lv.size) for lv in delta.bids] == [(Decimal("3000.01"), Decimal("0.010"))]
    assert [(lv.price, lv.size) for lv in delta.asks] == [(Decimal("3001.00"), Decimal("0.007"))]
    # A new version whose published levels are the same: nothing to say.
    assert (
        publication.messages(
            {"WETH-USDC": state(6, ((300_001, 10), (300_000, 1000)), ((300_100, 7),))}, 30
        )
        == []
    )
    [again] = publication.messages(
        {"WETH-USDC": state(6, ((300_001, 10), (300_000, 1000)), ((300_100, 7),))}, 1000
    )
    assert isinstance(again, BookSnapshot)
    assert again.seq == 6


def test_messages_round_trip_on_the_wire_keyed_by_venue_and_market() -> None:
    publication = BookPublication({"WETH-USDC": INFO}, snapshot_interval_ms=1000)
    [snap] = publication.messages({"WETH-USDC": state(1, ((1, 1),))}, 0)
    assert book_key(snap) == b"clob_a/WETH-USDC"
    parsed = TypeAdapter(BookMessage).validate_json(book_value(snap))
    assert parsed == snap
    assert b'"marketId":"WETH-USDC"' in book_value(snap)


def _snapshot(seq: int, bids: dict[str, str]) -> BookSnapshot:
    return BookSnapshot(
        venue="v",
        market_id="m",
        chain_id=1,
        base="WETH",
        quote="USDC",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        maker_fee=0,
        taker_fee=0,
        seq=seq,
        asks=(),
        timestamp_ms=0,
        bids=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in bids.items()),
    )


def _delta(from_seq: int, seq: int, bids: dict[str, str]) -> BookDelta:
    return BookDelta(
        venue="v",
        market_id="m",
        from_seq=from_seq,
        seq=seq,
        timestamp_ms=0,
        bids=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in bids.items()),
    )


def test_a_replica_applies_in_order_ignores_duplicates_and_resyncs_after_a_gap() -> None:
    replica = BookReplica()
    assert replica.apply(_delta(0, 1, {"1": "1"})) is Applied.WAITING
    assert replica.apply(_snapshot(2, {"100": "5", "99": "1"})) is Applied.APPLIED
    assert replica.apply(_delta(2, 3, {"100": "0", "98": "2"})) is Applied.APPLIED
    assert replica.levels()[0] == [(Decimal(99), Decimal(1)), (Decimal(98), Decimal(2))]
    assert replica.apply(_delta(2, 3, {"100": "0"})) is Applied.DUPLICATE
    # A delta spanning versions the replica already has (another publisher's) still applies:
    # it sets sizes, it does not add to them.
    assert replica.apply(_delta(2, 4, {"100": "0", "98": "3"})) is Applied.APPLIED
    assert replica.bids == {Decimal(99): Decimal(1), Decimal(98): Decimal(3)}
    assert replica.apply(_delta(6, 7, {"97": "1"})) is Applied.GAP  # 5..6 missed
    assert (replica.in_sync, replica.gaps, replica.bids) == (False, 1, {})
    assert replica.apply(_delta(7, 8, {"97": "1"})) is Applied.WAITING
    assert replica.apply(_snapshot(8, {"97": "1"})) is Applied.APPLIED
    assert replica.apply(_snapshot(5, {"1": "1"})) is Applied.DUPLICATE  # older
    assert (replica.seq, replica.bids) == (8, {Decimal(97): Decimal(1)})


async def test_a_replica_fed_by_the_book_source_equals_the_venues_book(
    open_venue: OpenVenue, clock: Clock
) -> None:
    venue = await open_venue(
        markets={
            "WETH-USDC": market(
                {"spread_bps": "8", "levels": 4, "level_size": "1.5", "refresh_ms": 500},
                volatility_bps="200",
                period_s="30",
            )
        }
    )
    source = BookSource(venue)
    replica = BookReplica()
    kinds = []
    for i in range(12):
        for message in await source.poll():
            kinds.append(message.kind)
            assert replica.apply(message) is Applied.APPLIED
        if i % 3 == 1:
            await venue.place_order(
                "WETH-USDC",
                Side.SELL,
                Decimal("0.7"),
                None,
                order_type=OrderType.MARKET,
                tif=TimeInForce.IOC,
            )
        clock.advance(300)
    assert kinds[0] == "snapshot"
    assert "delta" in kinds
    book = (await venue.books())["WETH-USDC"]
    info = venue.market_infos()["WETH-USDC"]
    for message in await source.poll():
        replica.apply(message)
    assert replica.seq == book.seq
    assert replica.levels() == (
        [(p * info.tick_size, s * info.lot_size) for p, s in book.bids],
        [(p * info.tick_size, s * info.lot_size) for p, s in book.asks],
    )
