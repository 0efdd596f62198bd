"""``sep record`` against the real broker: what is produced on the market topics while it
records becomes a data file a backtest reads (in time order, tombstones skipped)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from pipeline.backtest.data import BOOKS_TOPIC, POOLS_TOPIC, read_header, read_market
from pipeline.backtest.record import record
from pipeline.runtime.topics import ensure_topics
from pipeline.topology import load_topology


async def test_records_pools_and_books_as_they_go_by(kafka_bootstrap: str, tmp_path: Path) -> None:
    topology = load_topology()
    await ensure_topics(kafka_bootstrap, topology)
    partitions = {t.name: t.partitions for t in topology.topics}
    run = uuid.uuid4().hex[:8]
    now = time.time_ns() // 1_000_000
    sent = [
        (POOLS_TOPIC, f"sim/p-{run}".encode(), b'{"poolId": "a"}', now),
        (BOOKS_TOPIC, f"clob_a/m-{run}".encode(), b'{"kind": "snapshot"}', now + 5),
        (POOLS_TOPIC, f"sim/p-{run}".encode(), None, now + 6),  # a tombstone
        (POOLS_TOPIC, f"sim/q-{run}".encode(), b'{"poolId": "b"}', now + 10),
    ]
    ready = asyncio.Event()
    out = tmp_path / "live.jsonl"
    task = asyncio.create_task(
        record(
            kafka_bootstrap,
            out,
            seconds=60,
            max_events=3,
            on_ready=ready.set,
            partitions=partitions,
        )
    )
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # failed before it was ready: say why
    assert ready.is_set()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for topic, key, value, at in sent:
            await producer.send_and_wait(topic, value, key=key, timestamp_ms=at)
    finally:
        await producer.stop()
    stats = await asyncio.wait_for(task, 60)
    assert stats.events == 3
    assert stats.skipped == 1
    events = [e for e in read_market(out) if run.encode() in e.key]
    assert [(e.topic, e.key, e.at_ms) for e in events] == [
        (t, k, at) for t, k, v, at in sent if v is not None
    ]
    assert read_header(out)["recorded"]["topics"] == [POOLS_TOPIC, BOOKS_TOPIC]
