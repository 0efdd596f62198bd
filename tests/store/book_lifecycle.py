"""Real event chains of intents on order books, for the read-side tests: two clob venues
(matching engines and SQLite ledgers, no makers: the book is laid out by hand), submissions
through the real stage functions, a plan on the aggregated book, the book moved before the
execute stage runs it with ``onPartialFill: REPLAN``.

The chain of ``moved_book_lifecycle``: clob_a asks 1 WETH at 3,000 and 1 at 3,010, clob_b 1
at 3,005 and 1 at 3,020; all-in (taker fees 0.05 % and 0.10 %) an ACQUIRE of 3 WETH plans a
child of 2 on clob_a (limit 3,010) and 1 on clob_b (limit 3,005); someone lifts clob_a's
3,000 first, so clob_a's child fills 1 of 2 and the rest (1 WETH) is re-planned on clob_b's
3,020 (``<plan>-r1``): every fill carries its taker fee.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import orjson

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.models.events import Event, IntentPrioritised
from pipeline.models.market import BookLevel, BookSnapshot
from pipeline.plugins.venue import Venue, VenueContext
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.book_planning import plan_on_books
from pipeline.stages.execute import build as build_execute
from pipeline.stages.ingest import ingest_record
from pipeline.stages.plan import result_output
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from plugins.clob_venue import ClobVenue, ClobVenueConfig, Side, TimeInForce
from tests.store.lifecycle import INGESTED, T0, TOPOLOGY

ASSETS = {a.symbol: a for a in TOPOLOGY.assets}
FEES = {"clob_a": 500, "clob_b": 1000}
TICK, LOT = Decimal("0.01"), Decimal("0.001")


def _config(venue: str) -> ClobVenueConfig:
    market = {
        "base": "WETH",
        "quote": "USDC",
        "tick_size": str(TICK),
        "lot_size": str(LOT),
        "reference_price": "3000",
        "volatility_bps": "0",
    }
    return ClobVenueConfig.model_validate(
        {"taker_fee": FEES[venue], "maker_fee": 0, "markets": {"WETH-USDC": market}},
        context={"assets": ASSETS},
    )


@contextlib.asynccontextmanager
async def clob_venues(data_dir: Path) -> AsyncIterator[dict[str, ClobVenue]]:
    made = {n: ClobVenue(n, _config(n), VenueContext(data_dir / n, ASSETS)) for n in FEES}
    for venue in made.values():
        await venue.start()
    try:
        yield made
    finally:
        for venue in made.values():
            await venue.stop()


def book_message(venue: ClobVenue) -> BookSnapshot:
    """The venue's WETH-USDC book now, as its book source publishes it."""
    bids, asks = venue._engines["WETH-USDC"].levels(None)
    return BookSnapshot(
        venue=venue.name,
        market_id="WETH-USDC",
        chain_id=ASSETS["WETH"].chain_id,
        base="WETH",
        quote="USDC",
        tick_size=TICK,
        lot_size=LOT,
        maker_fee=0,
        taker_fee=FEES[venue.name],
        seq=venue.ledger.market_state("WETH-USDC")[0],
        bids=tuple(BookLevel(price=p * TICK, size=q * LOT) for p, q in bids),
        asks=tuple(BookLevel(price=p * TICK, size=q * LOT) for p, q in asks),
        timestamp_ms=0,
    )


class Books:
    """A ``BookView`` of the venues' books as they are when read."""

    def __init__(self, venues: dict[str, ClobVenue]) -> None:
        self._venues = venues

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        board = BookBoard(lambda s: ASSETS[s].decimals)
        for venue in self._venues.values():
            board.apply(book_message(venue))
        return board.book(base, quote)


async def asks(venue: ClobVenue, *levels: tuple[str, str]) -> None:
    for price, qty in levels:
        await venue.place_order("WETH-USDC", Side.SELL, Decimal(qty), Decimal(price), owner="mm")


async def moved_book_lifecycle(
    venues: dict[str, ClobVenue], offset: int, *, strategy: str = "books", at_ms: int = T0
) -> list[Event]:
    """Every event of one intent whose book moved between plan and execution (see the
    module docstring), ending ``exec.completed`` with a re-planned child."""
    await asks(venues["clob_a"], ("3000", "1"), ("3010", "1"))
    await asks(venues["clob_b"], ("3005", "1"), ("3020", "1"))
    data = submission(
        TOPOLOGY,
        "ACQUIRE",
        "WETH",
        "USDC",
        "3",
        max_slippage="0.02",
        client_intent_id=f"book-{offset}",
        strategy_id=strategy,
        venues=list(FEES),
    )
    data["constraints"]["onPartialFill"] = "REPLAN"
    rec = Record("sep.intents.submitted", 0, offset, at_ms, strategy.encode(), orjson.dumps(data))
    events = [
        decode_event(ingest_record(rec, MemoryTable(), at_ms, topic=INGESTED).outputs[0].value)
    ]
    events += [
        decode_event(o.value) for o in validate_event(events[0], TOPOLOGY, tuple(FEES), at_ms)
    ]
    events.append(decode_event(prioritise_event(events[-1], TOPOLOGY, at_ms)[1].value))
    books = Books(venues)
    book = books.book("WETH", "USDC")
    assert book is not None
    prioritised = events[-1].payload_as(IntentPrioritised)
    planned = plan_on_books(prioritised.intent, prioritised.priority, book)
    topic = TOPOLOGY.stage("plan").events_topic
    events.append(decode_event(result_output(events[-1], planned, at_ms, topic=topic).value))
    assert events[-1].topic == "plan.created", events[-1].payload
    # The book moves: someone lifts clob_a's 3,000 before the plan's child reaches it.
    await venues["clob_a"].place_order(
        "WETH-USDC", Side.BUY, Decimal(1), Decimal(3000), tif=TimeInForce.IOC, owner="other"
    )
    typed: dict[str, Venue] = dict(venues)
    context = StageContext(TOPOLOGY, Settings(), venues=typed, clock=lambda: at_ms + 5)
    context.books = books
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await build_execute(context).process(
        [Record("sep.plans", 0, offset, at_ms, None, encode_event(events[-1]))], emit
    )
    return events + [decode_event(o.value) for o in sent]
