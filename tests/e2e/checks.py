"""Assertions shared by the end-to-end tests, each reading the real stores."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.stages.rejections import DEADLETTER_TOPIC
from pipeline.store.readmodel import STATE_OF, TERMINAL_STATES, ReadModel

TERMINAL = TERMINAL_STATES


async def events_by_intent(
    conn: asyncpg.Connection, ids: list[str]
) -> dict[str, list[asyncpg.Record]]:
    rows = await conn.fetch(
        "SELECT correlation_id, seq, topic, event_id, payload FROM events "
        "WHERE correlation_id = ANY($1::text[]) ORDER BY correlation_id, seq",
        ids,
    )
    out: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        out[row["correlation_id"]].append(row)
    return out


async def settled_events(
    conn: asyncpg.Connection, ids: list[str], within_s: float = 60.0
) -> dict[str, list[asyncpg.Record]]:
    """``events_by_intent`` once every intent's stored events are contiguous from seq 1 and
    end in a terminal state (or ``within_s`` passed: the caller's assertions then say what is
    missing).  The project stage stores one intent's events as each topic's records reach it,
    so a terminal event can be stored before an earlier one of another topic (by as long as
    one topic's fetch lags another's: seconds after a restart under load)."""

    def settled(events: list[asyncpg.Record]) -> bool:
        seqs = [e["seq"] for e in events]
        return seqs == list(range(1, len(seqs) + 1)) and expected_state(events) in TERMINAL

    deadline = time.monotonic() + within_s
    while True:
        by_intent = await events_by_intent(conn, ids)
        if all(settled(by_intent.get(i, [])) for i in ids) or time.monotonic() > deadline:
            return by_intent
        await asyncio.sleep(0.2)


def assert_contiguous(intent_id: str, events: list[asyncpg.Record]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"{intent_id}: seqs {seqs}"


COMPLETED_PATH = [
    "intent.submitted",
    "risk.approved",
    "intent.accepted",
    "intent.prioritised",
    "plan.created",
    "exec.started",
    "exec.step_submitted",
    "exec.step_filled",
    "exec.completed",
]


def expected_state(events: list[asyncpg.Record]) -> str:
    state = "submitted"
    for event in events:
        state = STATE_OF[event["topic"]] or state
    return state


async def assert_read_model_agrees(
    read_model: ReadModel, by_intent: dict[str, list[asyncpg.Record]], within_s: float = 30.0
) -> None:
    """The read model says what the stored events say, once it has caught up (the project
    stage applies a batch to Redis just after storing it, so it trails by up to a pass)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        views = {i: await read_model.intent(i) for i in by_intent}
        if all(
            v.get("eventCount") == str(len(by_intent[i]))
            and v.get("state") == expected_state(by_intent[i])
            for i, v in views.items()
        ):
            break
        await asyncio.sleep(0.2)
    for intent_id, events in by_intent.items():
        view = await read_model.intent(intent_id)
        assert view.get("state") == expected_state(events), (
            intent_id,
            view,
            [e["topic"] for e in events],
        )
        assert int(view["eventCount"]) == len(events), (intent_id, view)
        assert int(view["lastSeq"]) == events[-1]["seq"]


def sim_fill_counts(data_dir: Path) -> dict[str, int]:
    from plugins.sim_venue.ledger import Ledger

    ledger = Ledger.open_readonly(data_dir / "venues" / "sim" / "ledger.sqlite")
    try:
        return ledger.fill_counts()
    finally:
        ledger.close()


async def dead_letter_end(settings: Settings) -> int:
    """The dead-letter topic's end offset now (to count what a test adds to it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(DEADLETTER_TOPIC, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()
