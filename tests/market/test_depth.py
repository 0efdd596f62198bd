"""A market's depth document from the book board: each venue's own levels, and the
consolidated all-in depth (fees folded in, cumulative from the best price), as the plan stage
sweeps it; a venue behind a gap is listed as resyncing and left out of the depth."""

from __future__ import annotations

from decimal import Decimal

from pipeline.market.board import BookBoard
from pipeline.market.depth import depth_document, markets
from pipeline.models.market import BookDelta, BookLevel, BookSnapshot

DECIMALS = {"WETH": 18, "USDC": 6}


def snap(
    venue: str, fee: int, tick: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> BookSnapshot:
    return BookSnapshot(
        venue=venue,
        market_id="WETH-USDC",
        chain_id=1,
        base="WETH",
        quote="USDC",
        tick_size=Decimal(tick),
        lot_size=Decimal("0.001"),
        maker_fee=0,
        taker_fee=fee,
        seq=1,
        bids=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in bids),
        asks=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in asks),
        timestamp_ms=0,
    )


def board() -> BookBoard:
    b = BookBoard(DECIMALS.get)
    b.apply(snap("a", 1000, "0.01", [("2999", "1"), ("2998", "2")], [("3001", "1"), ("3002", "3")]))
    b.apply(snap("b", 0, "0.5", [("2998.5", "4")], [("3001.5", "2")]))
    return b


def test_depth_is_all_in_and_cumulative_across_venues() -> None:
    doc = depth_document(board(), "WETH", "USDC")
    assert doc is not None
    assert markets(board()) == [{"market": "WETH/USDC", "venues": ["a", "b"]}]
    # a's ask 3001 with 0.10 % is 3004.001 all-in: b's 3001.5 (no fee) is the best.
    assert [(lv["price"], lv["size"], lv["total"]) for lv in doc["depth"]["asks"]] == [
        ("3001.5", "2", "2"),
        ("3004.001", "1", "3"),
        ("3005.002", "3", "6"),
    ]
    # a's bid 2999 less 0.10 % is 2996.001: b's 2998.5 is the best bid after fees.
    assert [(lv["price"], lv["total"]) for lv in doc["depth"]["bids"]] == [
        ("2998.5", "4"),
        ("2996.001", "5"),
        ("2995.002", "7"),
    ]
    a = next(v for v in doc["venues"] if v["venue"] == "a")
    assert (a["bestBid"], a["bestAsk"], a["takerFee"], a["inSync"]) == ("2999", "3001", 1000, True)
    assert a["asks"] == [["3001", "1"], ["3002", "3"]]


def test_a_venue_behind_a_gap_is_resyncing_and_out_of_the_depth() -> None:
    b = board()
    b.apply(BookDelta(venue="b", market_id="WETH-USDC", from_seq=5, seq=6, timestamp_ms=0))
    doc = depth_document(b, "WETH", "USDC")
    assert doc is not None
    venue_b = next(v for v in doc["venues"] if v["venue"] == "b")
    assert (venue_b["inSync"], venue_b["bestAsk"]) == (False, None)
    assert doc["depth"]["asks"][0]["price"] == "3004.001"
    assert depth_document(b, "WBTC", "USDC") is None
