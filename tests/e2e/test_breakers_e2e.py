"""A venue that fails repeatedly, end to end: the sim venue's ``inject_failures`` knob makes
its first submissions revert; the breaker opens (execute), the planner routes around it (to
the chain), after the cool-down one probe half-opens it (plan) and its fill closes it
(execute); the intents go back to the sim venue.  Two workers, the real broker; the breaker's
history is read from ``sep.control``."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.control import kill_switch
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.control.keys import breaker_key
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.models.breakers import VenueBreakerChanged
from pipeline.samples import submission
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from tests.e2e.checks import events_by_intent

pytestmark = pytest.mark.services

INJECTED = 5  # two workers count apart: 2 + 2 failures open nothing, the fifth must
COOLDOWN_MS = 5_000


@pytest.fixture(scope="module")
def breaker_topology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load(Path(DEFAULT_PATH).read_text())
    sim = data["plugins"]["venues"]["sim"]["config"]
    # No fee on sim's WETH/USDC pool: the planner's choice whenever it may use sim (the
    # chain's pools quote within 0.05 % of it otherwise).
    for pool in sim["pools"]:
        if pool["pool_id"] == "sim-weth-usdc-5":
            pool["fee"] = 0
    sim["inject_failures"] = {
        "first": INJECTED,
        "reason": "reverted",
    }
    data["breakers"] = {"failures": 3, "cooldown_ms": COOLDOWN_MS, "probes": 1}
    path = tmp_path_factory.mktemp("breakers") / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def workers(prepared: Settings, breaker_topology: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(
        prepared, count=2, extra_env={"SEP_TOPOLOGY": str(breaker_topology)}, name="breakers"
    )
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


async def _send(settings: Settings, run: str, k: int, venues: list[str] | None = None) -> str:
    body: dict[str, Any] = submission(
        load_topology(),
        "DISPOSE",
        "WETH",
        "USDC",
        "0.1",
        strategy_id=f"brk-{run}",
        client_intent_id=f"{run}-{k}",
        time_window_ms=120_000,
        venues=venues,
    )
    async with IntentProducer(settings.kafka) as producer:
        stamp, delivery = await producer.send(body)
        await delivery
    return predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"])


async def _sim_breaker(settings: Settings) -> VenueBreakerChanged | None:
    state = await kill_switch.read_state(settings.kafka)
    return next((b for b in kill_switch.breakers(state) if b.venue == "sim"), None)


async def _history(settings: Settings, since_ms: int) -> list[VenueBreakerChanged]:
    """Every ``breaker/sim`` record on the control topic since ``since_ms``, in topic order."""
    consumer = AIOKafkaConsumer(
        CONTROL_TOPIC,
        bootstrap_servers=settings.kafka,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[VenueBreakerChanged] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1_000):
            for records in batch.values():
                for record in records:
                    if record.key != breaker_key("sim").encode() or record.value is None:
                        continue
                    event = decode_event(record.value)
                    if event.timestamp.timestamp() * 1000 >= since_ms:
                        found.append(event.payload_as(VenueBreakerChanged))
    finally:
        await consumer.stop()
    return found


async def _planned_ms(db: asyncpg.Connection, intents: list[str]) -> dict[str, int]:
    """When each intent was planned (or refused by the planner), by the planner's clock."""
    rows = await db.fetch(
        "SELECT correlation_id, time FROM events WHERE correlation_id = ANY($1::text[])"
        " AND topic IN ('plan.created', 'plan.rejected')",
        intents,
    )
    return {r["correlation_id"]: int(r["time"].timestamp() * 1000) for r in rows}


def _venue(events: list[asyncpg.Record]) -> str | None:
    for event in events:
        if event["topic"] == "plan.created":
            return str(orjson.loads(event["payload"])["plan"]["steps"][0]["venue"])
    return None


async def test_a_failing_venue_is_routed_around_half_opens_and_recovers(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:8]
    start_ms = time.time_ns() // 1_000_000
    k = 0
    # 1. One intent at a time until the injected reverts have opened the breaker.
    failed: list[str] = []
    while (breaker := await _sim_breaker(prepared)) is None or breaker.state != "open":
        assert len(failed) < INJECTED, "the breaker did not open"
        k += 1
        intent = await _send(prepared, run, k)
        outcome = await wait_until_finished(prepared.postgres, [intent], 120, pool=workers)
        events = (await events_by_intent(db, [intent]))[intent]
        assert (_venue(events), outcome[intent]) == ("sim", "exec.failed"), events
        failed.append(intent)
    assert breaker.failures == 3
    assert breaker.last_reason.startswith("reverted: injected failure")
    open_at = time.monotonic()

    # 2. Open: an intent that may only use sim is refused; the others are routed around, to
    # the chain (an intent planned after the cool-down may be a probe: not counted here).
    only_sim = await _send(prepared, run, k + 1, venues=["sim"])
    around = [await _send(prepared, run, k + i) for i in range(2, 5)]
    k += 4
    done = await wait_until_finished(prepared.postgres, [*around, only_sim], 120, pool=workers)
    by_intent = await events_by_intent(db, [*around, only_sim])
    planned_ms = await _planned_ms(db, [*around, only_sim])
    assert breaker.retry_at_ms is not None
    assert planned_ms[only_sim] < breaker.retry_at_ms, "phase 2 outlasted the cool-down"
    assert done[only_sim] == "plan.rejected"
    refusal = orjson.loads(by_intent[only_sim][-1]["payload"])
    assert refusal["reason"] == "breaker_open"
    assert "circuit breaker of venue 'sim' is open" in refusal["detail"]
    routed = [i for i in around if planned_ms[i] < breaker.retry_at_ms]
    assert routed, "phase 2 outlasted the cool-down"
    for intent in routed:
        assert (_venue(by_intent[intent]), done[intent]) == ("uniswap_v3", "exec.completed")

    # 3. After the cool-down, intents keep coming; one of the round's partition probes sim.
    await asyncio.sleep(max(0.0, COOLDOWN_MS / 1000 - (time.monotonic() - open_at)))
    later: list[str] = []
    deadline = time.monotonic() + 90
    while (breaker := await _sim_breaker(prepared)) is None or breaker.state != "closed":
        assert time.monotonic() < deadline, f"not closed after 90 s: {breaker}"
        k += 1
        later.append(await _send(prepared, run, k))
        await asyncio.sleep(0.25)
    await wait_until_finished(prepared.postgres, later, 120, pool=workers)

    # 4. Closed: the planner's choice is sim again.
    back = [await _send(prepared, run, k + i) for i in range(1, 4)]
    done = await wait_until_finished(prepared.postgres, back, 120, pool=workers)
    by_intent = await events_by_intent(db, back)
    for intent in back:
        assert (_venue(by_intent[intent]), done[intent]) == ("sim", "exec.completed")

    history = await _history(prepared, start_ms)
    states = [h.state.value for h in history]
    print(f"\nbreaker of sim: {[(h.state.value, h.actor, h.since_ms - start_ms) for h in history]}")
    assert states[0] == "open"
    assert states[-2:] == ["half_open", "closed"]
    assert set(states) == {"open", "half_open", "closed"}
    # Each half-open round was started by the planner, after the cool-down, for one probe.
    for before, half in itertools.pairwise(history):
        if half.state == "half_open":
            assert (half.actor, half.probes) == ("plan", 1)
            assert before.retry_at_ms is None or half.since_ms >= before.retry_at_ms
    # Every injected failure happened, and no more than those.
    later_events = await events_by_intent(db, later)
    probes = [i for i in later if _venue(later_events[i]) == "sim"]
    assert probes, "no probe went to sim"
