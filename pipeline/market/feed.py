"""The latest state of every pool, read from ``sep.market.pools`` by every planner.

Market data is broadcast, not shared out: each worker's plan stage needs *every* pool, while
a consumer group would hand each worker only some partitions.  So the feed is a plain
consumer with no group, assigned every partition, reading from the beginning (the topic is
compacted: the latest record per pool survives) and then following the tail.

Records are keyed ``venue/pool_id`` and hold a ``PoolState`` as JSON.  A record that does
not parse is logged and skipped: one venue publishing garbage must not blind the planner to
the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from pipeline.market.snapshots import PoolSnapshots
from pipeline.models.market import PoolState
from pipeline.runtime.delivery.patches import AdaptiveWaitConsumer

log = logging.getLogger(__name__)

TOPIC = "sep.market.pools"


def pool_key(state: PoolState) -> bytes:
    return f"{state.venue}/{state.pool_id}".encode()


def pool_value(state: PoolState) -> bytes:
    return state.model_dump_json(by_alias=True, exclude_none=True).encode()


class PoolFeed:
    """Follows ``sep.market.pools``; ``pools()`` is the latest state per venue and pool."""

    def __init__(self, bootstrap: str, topic: str = TOPIC) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._snapshots = PoolSnapshots()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._changed = asyncio.Condition()
        self.updates = 0
        """How many states have been applied (tests and the status page watch it)."""

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        """Connect, read what the topic holds, then follow it in the background."""
        # Long fetch waits while caught up (any new state ends them at once), instead of a
        # fetch every 50 ms per worker for nothing (see runtime.delivery.patches).
        consumer = AdaptiveWaitConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = consumer.partitions_for_topic(self._topic) or {0}
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        self._task = asyncio.create_task(self._follow(ends), name="pool-feed")
        await asyncio.wait_for(self._caught_up.wait(), catch_up_timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def pools(self) -> Mapping[str, list[PoolState]]:
        """The latest state of every pool, by venue, sorted by pool id.  A venue's list is
        never modified once handed out, and is handed out again while the venue has nothing
        new (see ``pipeline.market.snapshots``)."""
        return self._snapshots.pools()

    async def wait_for_update(self, after: int, timeout_s: float) -> int:
        """Wait until more than ``after`` states have been applied; return the new count."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.updates > after), timeout_s)
            return self.updates

    def apply(self, value: bytes) -> bool:
        try:
            state = PoolState.model_validate_json(value)
        except ValidationError as exc:
            log.warning("unreadable pool state skipped", extra={"error": str(exc)[:500]})
            return False
        self._snapshots.put(state)
        self.updates += 1
        return True

    async def _follow(self, ends: Mapping[TopicPartition, int]) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        if all(offset == 0 for offset in ends.values()):
            self._caught_up.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            applied = 0
            for messages in batch.values():
                for message in messages:
                    if message.value is not None:
                        applied += self.apply(message.value)
            if not self._caught_up.is_set():
                positions = {tp: await consumer.position(tp) for tp in ends}
                if all(positions[tp] >= end for tp, end in ends.items()):
                    self._caught_up.set()
            if applied:
                async with self._changed:
                    self._changed.notify_all()
