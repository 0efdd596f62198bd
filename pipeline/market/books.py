"""The L2 books of every book venue, read from ``sep.market.books`` by every planner.

Like the pool feed (``pipeline.market.feed``), market data is broadcast: a plain consumer with
no group, assigned every partition.  The topic is not compacted (a delta means nothing without
the messages before it), so the feed does not read it from the beginning: it starts
``lookback_ms`` back (venues snapshot every few seconds: a replica is in sync after the first
snapshot it reads; deltas before it are ignored), then follows the tail.  What it holds is a
``BookBoard`` (``pipeline.market.board``): one replica per (venue, market) with gap detection
and resync, and one aggregated book per pair, re-aggregated on read after a change.

Records are keyed ``venue/market_id`` and hold a ``BookMessage`` as JSON; one that does not
parse is logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from types import ModuleType

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter, ValidationError

from pipeline import ops
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.market.replica import Applied
from pipeline.models.market import BookDelta, BookMessage, BookSnapshot
from pipeline.runtime.delivery.patches import AdaptiveWaitConsumer

log = logging.getLogger(__name__)

TOPIC = "sep.market.books"
LOOKBACK_MS = 60_000
"""How far back a starting feed reads: several snapshot intervals of any venue."""

_MESSAGE: TypeAdapter[BookSnapshot | BookDelta] = TypeAdapter(BookMessage)


class BookFeed:
    """Follows ``sep.market.books``; ``book(base, quote)`` is the pair's aggregated book."""

    def __init__(
        self,
        bootstrap: str,
        decimals: Callable[[str], int | None],
        topic: str = TOPIC,
        *,
        partitions: int | None = None,
        lookback_ms: int = LOOKBACK_MS,
        ops_module: ModuleType = ops,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._lookback_ms = lookback_ms
        self._partitions = partitions
        self.board = BookBoard(decimals, ops_module)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._changed = asyncio.Condition()
        self.updates = 0
        """How many messages were applied (tests and the status page watch it)."""

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        """Connect, read the last ``lookback_ms`` of the topic, then follow it."""
        consumer = AdaptiveWaitConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        self._consumer = consumer
        # The topology's partition count when given (a consumer's metadata of a topic created
        # a moment ago can be incomplete).
        partitions = (
            set(range(self._partitions))
            if self._partitions is not None
            else consumer.partitions_for_topic(self._topic) or {0}
        )
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        since = int(time.time() * 1000) - self._lookback_ms
        found = await consumer.offsets_for_times({tp: since for tp in tps})
        ends = await consumer.end_offsets(tps)
        starts = {}
        for tp in tps:
            at = found.get(tp)
            starts[tp] = at.offset if at is not None else ends[tp]
            consumer.seek(tp, starts[tp])
        self._task = asyncio.create_task(self._follow(starts, ends), name="book-feed")
        await asyncio.wait_for(self._caught_up.wait(), catch_up_timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        return self.board.book(base, quote)

    async def wait_for_update(self, after: int, timeout_s: float) -> int:
        """Wait until more than ``after`` messages have been applied; return the new count."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.updates > after), timeout_s)
            return self.updates

    def apply(self, value: bytes) -> bool:
        try:
            message = _MESSAGE.validate_json(value)
        except ValidationError as exc:
            log.warning("unreadable book message skipped", extra={"error": str(exc)[:500]})
            return False
        applied = self.board.apply(message) is Applied.APPLIED
        self.updates += applied
        return applied

    async def _follow(
        self, starts: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]
    ) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        if all(starts[tp] >= end for tp, end in ends.items()):
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
