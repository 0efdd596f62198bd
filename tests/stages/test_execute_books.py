"""Execute on order books: child orders as IOC limits at the planned price bound, partial
fills failed with the reason or re-planned (the intent's ``onPartialFill``), each child once
in its venue's own ledger, equal to the execution events.

The clob venues are real (matching engine and SQLite ledger in a temporary directory), with
no makers: each test lays out the book by hand, plans on it, then moves it before executing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.models.events import Event, ExecFailed, PlanCreated, make_event
from pipeline.models.intent import Intent
from pipeline.models.market import BookLevel, BookSnapshot
from pipeline.plugins.venue import Venue
from pipeline.samples import submission
from pipeline.stages.base import Output, Record, StageContext
from pipeline.stages.book_planning import plan_on_books
from pipeline.stages.execute import ExecuteStage, build
from pipeline.topology import load_topology
from plugins.clob_venue import ClobVenue, Side, TimeInForce
from plugins.clob_venue.books import BookState
from tests.store.book_lifecycle import FEES, LOT, TICK, clob_venues

TOPOLOGY = load_topology()
ASSETS = {a.symbol: a for a in TOPOLOGY.assets}
T0 = 1_700_000_000_000


@pytest.fixture
async def venues(tmp_path: Path) -> AsyncIterator[dict[str, ClobVenue]]:
    async with clob_venues(tmp_path) as made:
        yield made


async def asks(venue: ClobVenue, *levels: tuple[str, str]) -> None:
    for price, qty in levels:
        await venue.place_order("WETH-USDC", Side.SELL, Decimal(qty), Decimal(price), owner="mm")


async def take(venue: ClobVenue, qty: str, price: str) -> None:
    """Someone else lifts the offers up to ``price`` (the book moves)."""
    await venue.place_order(
        "WETH-USDC", Side.BUY, Decimal(qty), Decimal(price), tif=TimeInForce.IOC, owner="other"
    )


async def book_now(venues: dict[str, ClobVenue]) -> AggregatedBook:
    """The aggregated book of the venues as they are (what the book feed would hold)."""
    for venue in venues.values():
        await venue.books()  # brought up to now
    return book_of_engines(venues)


def book_of_engines(venues: dict[str, ClobVenue]) -> AggregatedBook:
    """The venues' books as their engines hold them (a book feed that is never behind)."""
    board = BookBoard(lambda s: ASSETS[s].decimals)
    for name, venue in venues.items():
        bids, asks = venue._engines["WETH-USDC"].levels(None)
        seq = venue.ledger.market_state("WETH-USDC")[0]
        state = BookState(seq, tuple(bids), tuple(asks))
        board.apply(
            BookSnapshot(
                venue=name,
                market_id="WETH-USDC",
                chain_id=31337,
                base="WETH",
                quote="USDC",
                tick_size=TICK,
                lot_size=LOT,
                maker_fee=0,
                taker_fee=FEES[name],
                seq=state.seq,
                bids=tuple(BookLevel(price=p * TICK, size=q * LOT) for p, q in state.bids),
                asks=tuple(BookLevel(price=p * TICK, size=q * LOT) for p, q in state.asks),
                timestamp_ms=0,
            )
        )
    book = board.book("WETH", "USDC")
    assert book is not None
    return book


class Books:
    """A ``BookView`` of the venues' books as they are when read."""

    def __init__(self, venues: dict[str, ClobVenue]) -> None:
        self._venues = venues

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        return book_of_engines(self._venues) if (base, quote) == ("WETH", "USDC") else None


def plan_event(book: AggregatedBook, amount: str, **constraints: Any) -> Event:
    data = submission(TOPOLOGY, "ACQUIRE", "WETH", "USDC", amount, max_slippage="0.01")
    data["constraints"].update(constraints)
    intent = Intent.model_validate(
        {**data, "id": "intent-01HF7YAT00YKXV1TE2NN8PMX9W", "createdAtMs": T0}
    )
    planned = plan_on_books(intent, 5, book)
    assert isinstance(planned, PlanCreated), planned
    return make_event(
        "plan.created",
        planned,
        correlation_id=intent.id,
        seq=5,
        causation_id=None,
        at_ms=T0,
        id_ms=T0,
    )


def stage_of(venues: dict[str, ClobVenue], books: Books | None = None) -> ExecuteStage:
    typed: dict[str, Venue] = dict(venues)
    context = StageContext(TOPOLOGY, Settings(), venues=typed, clock=lambda: T0 + 1000)
    context.books = books
    return build(context)


async def execute(
    venues: dict[str, ClobVenue],
    event: Event,
    books: Books | None = None,
    stage: ExecuteStage | None = None,
) -> list[Event]:
    """``event`` through an execute stage (``stage``: one that may have seen it before, as
    a worker whose tables survive a redelivery)."""
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    stage = stage or stage_of(venues, books)
    await stage.process([Record("sep.plans", 0, 0, T0, None, encode_event(event))], emit)
    return [decode_event(o.value) for o in sent]


def filled_in_ledgers(venues: dict[str, ClobVenue]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per client order id (step id): (WETH bought, USDC paid with fees) in the ledgers."""
    out = {}
    for venue in venues.values():
        rows = venue.ledger._db.execute(
            "SELECT client_order_id, SUM(qty), SUM(CAST(notional AS INTEGER)), "
            "SUM(CAST(taker_fee AS INTEGER)) FROM fills WHERE client_order_id IS NOT NULL "
            "GROUP BY client_order_id"
        ).fetchall()
        for step, lots, notional, fee in rows:
            out[step] = (lots * LOT, Decimal(notional + fee).scaleb(-6))
    return out


def fees_in_ledgers(venues: dict[str, ClobVenue]) -> dict[str, Decimal]:
    """Per client order id (step id): the taker fees the ledgers charged, in USDC."""
    out = {}
    for venue in venues.values():
        rows = venue.ledger._db.execute(
            "SELECT client_order_id, SUM(CAST(taker_fee AS INTEGER)) FROM fills "
            "WHERE client_order_id IS NOT NULL GROUP BY client_order_id"
        ).fetchall()
        for step, fee in rows:
            out[step] = Decimal(fee).scaleb(-6).quantize(Decimal("0.000001"))
    return out


def fills_in_events(events: list[Event]) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        e.payload["stepId"]: (Decimal(e.payload["amountOut"]), Decimal(e.payload["amountIn"]))
        for e in events
        if e.topic == "exec.step_filled"
    }


async def test_children_over_several_levels_fill_whole_and_match_the_ledgers(
    venues: dict[str, ClobVenue],
) -> None:
    await asks(venues["clob_a"], ("3000", "1"), ("3010", "1"))
    await asks(venues["clob_b"], ("3005", "1"))
    # All-in: a 3001.50, b 3008.005, a 3011.505: a's child sweeps two levels (limit 3010).
    event = plan_event(await book_now(venues), "3", maxSlippage="0.002")
    events = await execute(venues, event)
    assert [e.topic for e in events][-1] == "exec.completed", events[-1].payload
    assert fills_in_events(events) == filled_in_ledgers(venues)
    assert sum(q for q, _ in fills_in_events(events).values()) == Decimal(3)
    assert {c: n for v in venues.values() for c, n in v.fill_counts().items()} == {
        s: 1 for s in fills_in_events(events)
    }
    # Each fill says the venue's taker fee on it, as the ledger charged it, in USDC.
    fees = {
        e.payload["stepId"]: (e.payload["fee"], e.payload["feeAsset"])
        for e in events
        if e.topic == "exec.step_filled"
    }
    assert fees == {
        step: (format(fee, "f"), "USDC") for step, fee in fees_in_ledgers(venues).items()
    }
    assert all(Decimal(fee) > 0 for fee, _ in fees.values())


async def test_a_moved_book_fails_the_rest_with_the_reason_by_default(
    venues: dict[str, ClobVenue],
) -> None:
    await asks(venues["clob_a"], ("3000", "1"), ("3010", "1"))
    await asks(venues["clob_b"], ("3005", "1"))
    event = plan_event(await book_now(venues), "3")
    await take(venues["clob_a"], "1", "3010")  # takes a's 3000 level before us
    events = await execute(venues, event)
    topics = [e.topic for e in events]
    assert topics[-1] == "exec.failed"
    assert "exec.completed" not in topics
    reason = events[-1].parse_payload()
    assert isinstance(reason, ExecFailed)
    assert reason.reason.startswith("partial_fill: step 1 on clob_a filled 1 of 2 WETH")
    assert "the rest (1 WETH) is not traded (onPartialFill FAIL)" in reason.reason
    # What filled stands, once, and the events say exactly what the ledgers hold.
    assert fills_in_events(events) == filled_in_ledgers(venues)
    assert events[-1].seq == event.seq + 2 + 2 * 2


async def test_a_child_that_finds_nothing_fails_its_step_and_the_others_still_go(
    venues: dict[str, ClobVenue],
) -> None:
    await asks(venues["clob_a"], ("3000", "1"))
    await asks(venues["clob_b"], ("3001", "1"))
    event = plan_event(await book_now(venues), "2")
    await take(venues["clob_a"], "1", "3000")
    events = await execute(venues, event)
    topics = [e.topic for e in events]
    assert topics.count("exec.step_failed") == 1
    assert topics.count("exec.step_filled") == 1
    assert topics[-1] == "exec.failed"
    assert "filled 0 of 1 WETH" in events[-1].payload["reason"]
    assert fills_in_events(events) == filled_in_ledgers(venues)


async def test_replan_places_the_rest_on_the_books_as_they_are_now(
    venues: dict[str, ClobVenue],
) -> None:
    await asks(venues["clob_a"], ("3000", "1"), ("3010", "1"))
    await asks(venues["clob_b"], ("3005", "2"))
    event = plan_event(await book_now(venues), "3", onPartialFill="REPLAN")
    plan = event.parse_payload()
    assert isinstance(plan, PlanCreated)
    await take(venues["clob_a"], "1", "3010")
    await asks(venues["clob_a"], ("3040", "5"))
    # The book the re-plan sees: b's second WETH at 3005 (3008.005 all-in) beats a's 3040.
    books = Books(venues)
    stage = stage_of(venues, books)
    events = await execute(venues, event, books, stage)
    topics = [e.topic for e in events]
    assert topics[-1] == "exec.completed", events[-1].payload
    filled = fills_in_events(events)
    assert f"{plan.plan.id}-r1" in filled
    assert sum(q for q, _ in filled.values()) == Decimal(3)
    assert filled == filled_in_ledgers(venues)
    # Redelivered: nothing is placed again, the same events come out (the re-plan is the
    # one remembered, although the books have moved since: by the re-planned fill itself).
    assert await execute(venues, event, books, stage) == events
    assert filled_in_ledgers(venues) == filled


async def test_replan_without_books_fails_the_rest_saying_why(
    venues: dict[str, ClobVenue],
) -> None:
    await asks(venues["clob_a"], ("3000", "1"), ("3010", "1"))
    event = plan_event(await book_now(venues), "2", onPartialFill="REPLAN")
    await take(venues["clob_a"], "1", "3010")
    events = await execute(venues, event)
    reason = events[-1].payload["reason"]
    assert events[-1].topic == "exec.failed"
    assert "not re-planned: this worker follows no books" in reason
    assert "(onPartialFill REPLAN)" in reason


class LaggingBooks(Books):
    """A book feed that is behind: the book before execution for the first ``reads``."""

    def __init__(self, venues: dict[str, ClobVenue], stale: AggregatedBook, reads: int) -> None:
        super().__init__(venues)
        self._stale, self._reads = stale, reads

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        if self._reads > 0:
            self._reads -= 1
            return self._stale
        return super().book(base, quote)


async def test_replan_waits_for_the_books_to_show_the_plans_own_fills(
    venues: dict[str, ClobVenue],
) -> None:
    await asks(venues["clob_a"], ("3000", "1"), ("3010", "1"))
    await asks(venues["clob_b"], ("3005", "1"), ("3020", "1"))
    # a 3001.50, b 3008.005, a 3011.505: a's child 2 (to 3010), b's 1 (at 3005).
    event = plan_event(await book_now(venues), "3", onPartialFill="REPLAN")
    await take(venues["clob_a"], "1", "3000")
    await asks(venues["clob_a"], ("3040", "5"))
    # Read before the children fill, the books still show b's 3005 (which b's child takes):
    # a re-plan on them would send the rest there, to find nothing.  Once they show the
    # fills, the rest goes to b's 3020 (3023.02 all-in, below a's 3041.52).
    stale = await book_now(venues)
    events = await execute(venues, event, LaggingBooks(venues, stale, reads=3))
    assert events[-1].topic == "exec.completed", events[-1].payload
    replanned = [e for e in events if e.topic == "exec.step_filled" and "-r" in e.payload["stepId"]]
    assert [(e.payload["venue"], e.payload["amountOut"]) for e in replanned] == [
        ("clob_b", "1.000000000000000000")
    ]
    assert fills_in_events(events) == filled_in_ledgers(venues)
