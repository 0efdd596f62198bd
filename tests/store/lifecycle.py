"""Real event chains for store tests: submissions through the real stage functions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.models.events import Event
from pipeline.plugins.manager import build_venues
from pipeline.plugins.venue import Venue
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.execute import build as build_execute
from pipeline.stages.ingest import ingest_record
from pipeline.stages.plan import plan_output
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from plugins.sim_venue import SimVenue

TOPOLOGY = load_topology()
INGESTED = TOPOLOGY.stage("ingest").events_topic
T0 = 1_700_000_000_000


@contextlib.asynccontextmanager
async def sim_venue(data_dir: Path) -> AsyncIterator[SimVenue]:
    """The real sim venue (its SQLite ledger under ``data_dir``), started and stopped."""
    venue = build_venues(TOPOLOGY, data_dir)["sim"]
    assert isinstance(venue, SimVenue)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.stop()


async def lifecycle(
    venue: Venue,
    offset: int,
    *,
    kind: str = "DISPOSE",
    subject: str = "WETH",
    counter: str = "USDC",
    amount: str = "1",
    strategy: str = "s1",
    at_ms: int = T0,
) -> list[Event]:
    """Every event of one intent that completes: submitted .. exec.completed (seq 1..9)."""
    data = submission(
        TOPOLOGY,
        kind,
        subject,
        counter,
        amount,
        max_slippage="0.02",
        time_window_ms=300_000,
        client_intent_id=f"c-{offset}",
        strategy_id=strategy,
    )
    rec = Record("sep.intents.submitted", 0, offset, at_ms, strategy.encode(), orjson.dumps(data))
    events = [
        decode_event(ingest_record(rec, MemoryTable(), at_ms, topic=INGESTED).outputs[0].value)
    ]
    events += [decode_event(o.value) for o in validate_event(events[0], TOPOLOGY, ("sim",), at_ms)]
    events.append(decode_event(prioritise_event(events[-1], TOPOLOGY, at_ms)[1].value))
    events.append(
        decode_event(
            plan_output(events[-1], {venue.name: await venue.pools()}, TOPOLOGY, at_ms).value
        )
    )
    assert events[-1].topic == "plan.created", events[-1].payload
    return events + await execute(venue, [events[-1]], at_ms + 5)


async def execute(venue: Venue, plans: Sequence[Event], clock_ms: int) -> list[Event]:
    stage = build_execute(
        StageContext(TOPOLOGY, Settings(), venues={venue.name: venue}, clock=lambda: clock_ms)
    )
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process(
        [Record("sep.plans", 0, i, clock_ms, None, encode_event(e)) for i, e in enumerate(plans)],
        emit,
    )
    return [decode_event(o.value) for o in sent]


def rejected(offset: int, strategy: str = "s1") -> list[Event]:
    """An intent the risk check turns down: submitted, risk.rejected."""
    data = submission(
        TOPOLOGY,
        "DISPOSE",
        "WETH",
        "USDC",
        "1000",
        max_slippage="0.01",
        client_intent_id=f"big-{offset}",
        strategy_id=strategy,
    )
    rec = Record("sep.intents.submitted", 0, offset, T0, strategy.encode(), orjson.dumps(data))
    first = decode_event(ingest_record(rec, MemoryTable(), T0, topic=INGESTED).outputs[0].value)
    return [first, *(decode_event(o.value) for o in validate_event(first, TOPOLOGY, ("sim",), T0))]
