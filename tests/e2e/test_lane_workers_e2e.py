"""A dedicated lane on the real stack: the fast lane's worker plans urgent intents by itself,
even while every other worker is stopped, and runs at a higher priority than them.

One shared worker and one fast-lane worker (``lanes.dedicated: [fast]``), as ``sep up``
starts them, on a topology of this module's own (its own app id, its consumer groups
started past what earlier modules left on the session's broker).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, group_offsets, skip_backlog, wait_until_finished
from pipeline.runtime.app import group_id
from pipeline.runtime.lane_workers import ROUTINE_NICENESS, lane_stages, worker_view
from pipeline.runtime.topics import ensure_topics
from pipeline.samples import submission
from pipeline.topology.loader import parse_topology
from pipeline.topology.models import Topology
from tests.lanes_support import lanes_on_yaml

RUN = uuid.uuid4().hex[:8]
STRATEGY = f"lanes-e2e-{RUN}"
FAST_INPUT, NORMAL_INPUT = "sep.intents.submitted.fast", "sep.intents.submitted.normal"


def lanes_topology(path: Path) -> Topology:
    data = yaml.safe_load(lanes_on_yaml(dedicated=("fast",)))
    data["app"]["id"] = f"sep-lanes-{RUN}"
    data["plugins"]["venues"]["uniswap_v3"] = {"enabled": False}
    data["plugins"]["strategies"] = {}
    text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return parse_topology(text)


@pytest.fixture(scope="module")
async def lanes(
    prepared: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WorkerPool, Topology]]:
    path = tmp_path_factory.mktemp("lanes") / "topology.yaml"
    topology = lanes_topology(path)
    await ensure_topics(prepared.kafka, topology)
    for lane, stages in ((None, None), ("fast", lane_stages(topology))):
        view = worker_view(topology, lane)
        inputs = {t for s in view.stages if not s.singleton for t in s.inputs}
        if stages is not None:  # what it reads from Kafka: the scheduled stages' lane topics
            inputs = {t for name in ("ingest", "validate") for t in view.stage(name).inputs}
        await skip_backlog(
            prepared.kafka,
            group_id(topology, stages, lane),
            {t.name: t.partitions for t in topology.topics if t.name in inputs},
        )
    pool = WorkerPool(
        prepared, count=1, lanes=("fast",), name="lanes", extra_env={"SEP_TOPOLOGY": str(path)}
    )
    pool.start()
    try:
        # Warm up both workers (joined, tables and feeds read) before the 5 s windows count.
        warm = [
            (body(topology, 0, urgent=True), FAST_INPUT),
            (body(topology, 0, False), NORMAL_INPUT),
        ]
        await wait_until_finished(prepared.postgres, await submit(prepared, warm), 120, pool)
        yield pool, topology
    finally:
        pool.stop()


def body(topology: Topology, n: int, urgent: bool) -> dict[str, Any]:
    """An urgent intent (5 s window, aggressive: the scorer's fast lane) or a routine one."""
    return submission(
        topology,
        "ACQUIRE",
        "WETH",
        "USDC",
        "0.01",
        strategy_id=STRATEGY,
        client_intent_id=f"{'u' if urgent else 'r'}{n}-{uuid.uuid4().hex[:6]}",
        time_window_ms=5_000 if urgent else 1_800_000,
        style="AGGRESSIVE" if urgent else "PASSIVE",
        venues=["sim"],
    )


async def submit(settings: Settings, bodies: list[tuple[dict[str, Any], str]]) -> list[str]:
    """Each body to its input lane topic; the intent ids ingest will give them."""
    ids = []
    async with IntentProducer(settings.kafka) as producer:
        deliveries = []
        for data, topic in bodies:
            stamp, delivery = await producer.send(data, topic=topic)
            deliveries.append(delivery)
            ids.append(predicted_intent_id(stamp, STRATEGY, data["clientIntentId"]))
        await asyncio.gather(*deliveries)
    return ids


async def planned_on_kafka(settings: Settings, ids: set[str], timeout_s: float) -> set[str]:
    """The intents of ``ids`` with a plan.created on sep.plans, read from Kafka itself (the
    event store is written by project, which runs in the shared worker)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: set[str] = set()
    try:
        tps = [TopicPartition("sep.plans", p) for p in range(8)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while found != ids and loop.time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for m in messages:
                    event = orjson.loads(m.value) if m.value else {}
                    if event.get("topic") == "plan.created" and event["correlationId"] in ids:
                        found.add(event["correlationId"])
    finally:
        await consumer.stop()
    return found


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


async def test_urgent_intents_go_through_the_lane_worker_and_routine_ones_do_not(
    lanes: tuple[WorkerPool, Topology], prepared: Settings
) -> None:
    pool, topology = lanes
    bodies = [(body(topology, n, urgent=n % 2 == 0), "") for n in range(20)]
    bodies = [(b, FAST_INPUT if n % 2 == 0 else NORMAL_INPUT) for n, (b, _) in enumerate(bodies)]
    ids = await submit(prepared, bodies)
    done = await wait_until_finished(prepared.postgres, ids, timeout=90, pool=pool)
    assert set(done.values()) == {"exec.completed"}, done

    # Which group read which lane: the lane worker's committed the fast topics only.
    offsets = await group_offsets(prepared.kafka)
    lane_group = offsets[group_id(topology, lane_stages(topology), "fast")]
    shared_group = offsets[group_id(topology)]
    lane_topics = {key.split("/")[0] for key in lane_group}
    assert lane_topics == {FAST_INPUT, "sep.intents.ingested.fast"}
    shared_topics = {key.split("/")[0] for key in shared_group}
    assert FAST_INPUT not in shared_topics
    assert {NORMAL_INPUT, "sep.intents.ingested.normal"} <= shared_topics
    # (sep.intents.ingested.fast is read there too: by project, which stores every lane.)

    # The shared worker runs at a lower priority; the lane worker at the default.
    assert niceness(pool.procs[0].pid) == niceness(os.getpid()) + ROUTINE_NICENESS
    assert niceness(pool.procs[pool.lane_slot("fast")].pid) == niceness(os.getpid())


async def test_the_lane_worker_plans_urgent_intents_while_the_shared_worker_is_stopped(
    lanes: tuple[WorkerPool, Topology], prepared: Settings
) -> None:
    pool, topology = lanes
    shared = pool.procs[0]
    shared.send_signal(signal.SIGSTOP)
    try:
        routine = await submit(
            prepared, [(body(topology, n, urgent=False), NORMAL_INPUT) for n in range(5)]
        )
        urgent = await submit(
            prepared, [(body(topology, n, urgent=True), FAST_INPUT) for n in range(5)]
        )
        planned = await planned_on_kafka(prepared, set(urgent) | set(routine), timeout_s=30)
        assert planned == set(urgent)  # every urgent one; no routine one (its worker is stopped)
    finally:
        shared.send_signal(signal.SIGCONT)
    done = await wait_until_finished(prepared.postgres, routine + urgent, timeout=90, pool=pool)
    assert set(done.values()) == {"exec.completed"}, done
