"""``sep record``: the live market topics into a market data file, as they go by.

    sep.market.pools, sep.market.books --plain consumer, no group, every partition-->
        MarketEvent(atMs = the record's timestamp, topic, key, value) --> data file

A record's timestamp is its producer's (``CreateTime``); records of two topics (or two
partitions) can come slightly out of time order, and a data file is in time order, so a
record older than the last one written is written at the last one's time (counted as
``reordered``).  A tombstone (no value) is skipped: a backtest has nothing to apply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.backtest.data import BOOKS_TOPIC, POOLS_TOPIC, MarketEvent, MarketWriter


@dataclass
class Recording:
    events: int = 0
    reordered: int = 0
    skipped: int = 0


async def record(
    bootstrap: str,
    out: Path,
    *,
    topics: Sequence[str] = (POOLS_TOPIC, BOOKS_TOPIC),
    seconds: float | None = None,
    max_events: int | None = None,
    from_beginning: bool = False,
    progress: Callable[[Recording], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    partitions: Mapping[str, int] | None = None,
) -> Recording:
    """Record until ``seconds`` passed or ``max_events`` were written (or cancelled);
    ``on_ready`` is called once the starting offsets are fixed (what is produced from then
    on is recorded).  ``partitions``: per topic (the topology's; a consumer's metadata of a
    topic it has not read yet can be empty), else asked of the broker."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    stats = Recording()
    meta = {
        "recorded": {
            "topics": list(topics),
            "bootstrap": bootstrap,
            "started_ms": time.time_ns() // 1_000_000,
        }
    }
    try:
        known = partitions or {}
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in (
                range(known[topic])
                if topic in known
                else sorted(consumer.partitions_for_topic(topic) or ())
            )
        ]
        if not tps:
            raise RuntimeError(f"none of {list(topics)} exists on {bootstrap}")
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve the offsets now
        if on_ready is not None:
            on_ready()
        deadline = None if seconds is None else time.monotonic() + seconds
        last = -(2**63)
        with MarketWriter(out, meta) as writer:
            while deadline is None or time.monotonic() < deadline:
                wait = (
                    500
                    if deadline is None
                    else max(1, int(min(0.5, deadline - time.monotonic()) * 1000))
                )
                batches = await consumer.getmany(timeout_ms=wait)
                records = [r for batch in batches.values() for r in batch]
                records.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
                for r in records:
                    if not r.value or r.key is None:
                        stats.skipped += 1
                        continue
                    at = r.timestamp
                    if at < last:
                        at = last
                        stats.reordered += 1
                    last = at
                    writer.write(MarketEvent(at, r.topic, r.key, r.value))
                    stats.events += 1
                    if max_events is not None and stats.events >= max_events:
                        return stats
                if progress is not None:
                    progress(stats)
    finally:
        await consumer.stop()
    return stats


def run_record(bootstrap: str, out: Path, **kwargs: object) -> Recording:
    return asyncio.run(record(bootstrap, out, **kwargs))  # type: ignore[arg-type]
