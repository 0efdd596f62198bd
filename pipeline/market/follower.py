"""Topics every worker reads whole: a plain consumer with no group, assigned every partition,
from a starting offset per partition, then following the tail (the pool, book, control and
risk feeds).

Subclasses say where to start (``start_offsets``) and what a record does (``apply``).  One
consumer can follow several topics (the risk feed reads three): each consumer is a fetch
session of its own with the broker, and the broker's CPU goes with fetch requests more than
with records.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.runtime.delivery.patches import AdaptiveWaitConsumer, Gathering


class TopicFollower(abc.ABC):
    """``start()`` reads up to the end the topic had, then follows it in the background."""

    TASK_NAME = "topic-follower"

    def __init__(
        self,
        bootstrap: str,
        topics: str | Mapping[str, int | None],
        *,
        partitions: int | None = None,
        gathering: Gathering | None = None,
    ) -> None:
        """``topics``: one topic (with ``partitions``), or topic -> partition count (None:
        the broker's count).  ``gathering``: let the broker gather records into larger
        fetches while they flow (a follower that can lag by ``gathering.wait_ms``)."""
        self._bootstrap = bootstrap
        self._topics: dict[str, int | None] = (
            {topics: partitions} if isinstance(topics, str) else dict(topics)
        )
        self._gathering = gathering
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._changed = asyncio.Condition()
        self.updates = 0
        """How many records were applied (tests and the status page watch it)."""
        self.offset = -1
        """The offset of the record ``apply`` is given (the pool feed marks states with it)."""

    @abc.abstractmethod
    def apply(self, value: bytes) -> bool:
        """Apply one record's value; whether it changed anything."""

    @abc.abstractmethod
    async def start_offsets(
        self, consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Where to start reading each partition."""

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        """Connect, read from ``start_offsets`` to the current end, then follow the tail."""
        # Long fetch waits while caught up (any new record ends them at once), instead of a
        # fetch every 50 ms per worker for nothing (see runtime.delivery.patches).
        consumer = AdaptiveWaitConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            gathering=self._gathering,
            # Only a record's value and offset are read: the batch's own record objects, no
            # ConsumerRecord each (the risk feed reads every intent's events in every worker).
            records="raw",
        )
        await consumer.start()
        self._consumer = consumer
        # The topology's partition count when given (a consumer's metadata of a topic created
        # a moment ago can be incomplete).
        tps = [
            TopicPartition(topic, p)
            for topic, count in self._topics.items()
            for p in sorted(
                set(range(count))
                if count is not None
                else consumer.partitions_for_topic(topic) or {0}
            )
        ]
        consumer.assign(tps)
        starts = await self.start_offsets(consumer, tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        ends = await consumer.end_offsets(tps)
        self._task = asyncio.create_task(self._follow(starts, ends), name=self.TASK_NAME)
        await asyncio.wait_for(self._caught_up.wait(), catch_up_timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for_update(self, after: int, timeout_s: float) -> int:
        """Wait until more than ``after`` records have been applied; return the new count."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.updates > after), timeout_s)
            return self.updates

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
                        self.offset = message.offset
                        applied += self.apply(message.value)
            if not self._caught_up.is_set():
                positions = {tp: await consumer.position(tp) for tp in ends}
                if all(positions[tp] >= end for tp, end in ends.items()):
                    self._caught_up.set()
            if applied:
                async with self._changed:
                    self._changed.notify_all()
