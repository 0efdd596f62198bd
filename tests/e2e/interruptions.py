"""Interrupting workers mid-stream and checking that every intent was still done exactly once:
what the restart tests of each process layout share (``test_restarts``, ``test_split_layout_e2e``).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from pipeline.client import INPUT_TOPIC, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.intent_ids import submission_key
from pipeline.samples import random_submission
from pipeline.store.readmodel import ReadModel
from pipeline.topology import load_topology
from tests.e2e.checks import (
    COMPLETED_PATH,
    assert_contiguous,
    assert_read_model_agrees,
    settled_events,
    sim_fill_counts,
)

COUNT = 1500
RATE = 500.0  # intents/s (issue 11's steady rate), so the interruption lands mid-stream
STOP_BOUND_S = 10.0  # issue 10: a graceful stop under load finishes within this


async def stream(settings: Settings, run: str, sent: list[str]) -> None:
    """Produce COUNT valid intents at RATE, recording each predicted intent id."""
    topology = load_topology()
    rng = random.Random(run)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    await producer.start()
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(COUNT):
            body = random_submission(
                topology,
                rng,
                strategy_id=f"restart-{run}-{i % 3}",
                client_intent_id=f"{run}-{i}",
                venues=["sim"],  # the sim ledger is what counts fills here
            )
            # Long enough to outlive a slow rejoin, and the widest slippage risk allows: steps
            # held up by the restart execute against prices other fills have moved, and this
            # test is about loss and duplicates, not expiry or slippage.
            body["constraints"]["timeWindowMs"] = 600_000
            body["constraints"]["maxSlippage"] = "0.05"
            stamp = time.time_ns() // 1_000_000
            await producer.send(
                INPUT_TOPIC,
                orjson.dumps(body),
                key=submission_key(body["strategyId"], body["clientIntentId"]).encode(),
                timestamp_ms=stamp,
            )
            sent.append(predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"]))
            await asyncio.sleep(max(0.0, start + (i + 1) / RATE - loop.time()))
    finally:
        await producer.stop()


async def interrupt_mid_stream(
    workers: WorkerPool, settings: Settings, interrupt: Callable[[], object]
) -> list[str]:
    run = uuid.uuid4().hex[:8]
    sent: list[str] = []
    streaming = asyncio.create_task(stream(settings, run, sent))
    while len(sent) < COUNT // 3:  # noqa: ASYNC110 - polling a plain list the producer fills
        await asyncio.sleep(0.05)
    # Interrupt a pipeline that is running, not one still starting (a SIGTERM before the
    # worker has installed its handlers just ends the process, which proves nothing).
    await wait_until_finished(settings.postgres, sent[:20], timeout=120, pool=workers)
    await asyncio.to_thread(interrupt)
    assert not workers.procs, "workers still registered after the interruption"
    await asyncio.sleep(0.5)
    workers.start()
    await streaming
    return sent


async def assert_exactly_once(
    settings: Settings, db: asyncpg.Connection, ids: list[str], workers: WorkerPool
) -> None:
    outcome = await wait_until_finished(settings.postgres, ids, timeout=240, pool=workers)
    by_intent = await settled_events(db, ids)
    unfinished = {
        i: [(e["topic"], orjson.loads(e["payload"])) for e in by_intent[i]][-2:]
        for i, topic in outcome.items()
        if topic != "exec.completed"
    }
    assert not unfinished, unfinished
    assert len(by_intent) == COUNT
    for intent, events in by_intent.items():
        assert [e["topic"] for e in events] == COMPLETED_PATH, intent
        assert_contiguous(intent, events)
    steps = [
        orjson.loads(e["payload"])["stepId"]
        for events in by_intent.values()
        for e in events
        if e["topic"] == "exec.step_filled"
    ]
    fills = sim_fill_counts(settings.data_dir)
    doubles = {s: fills.get(s) for s in steps if fills.get(s) != 1}
    assert not doubles, f"steps not filled exactly once: {doubles}"
    read_model = ReadModel.connect(settings.redis, settings.redis_prefix)
    try:
        await assert_read_model_agrees(read_model, by_intent)
    finally:
        await read_model.close()
