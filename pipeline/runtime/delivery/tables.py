"""Changelog-backed tables for the stages' remembered decisions, kept by the runtime.

A stage's table holds, per key, what it decided (``pipeline.stages.decisions``).  Each entry
lives in the changelog partition of the *input partition* its record came from, so the worker
that owns input partition p after a rebalance recovers exactly the entries it may need: on
assignment, the runtime reads changelog partition p from the start to its end before any
record of p is processed (``recover``).

Writes do not go to Kafka at once: ``set``/``delete`` update the local dict and queue a
changelog record, and the runtime sends the queue with the batch's outputs and waits for
their acknowledgements together (``take_pending``).  A batch's inputs are settled only after
its table writes are durable, so a crash never leaves an input committed whose decision is
lost.  (Shape: key=intent id, value=the stage's outputs as JSON; a None value is a
tombstone, which compaction eventually drops.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.runtime.topics import TopicSpec, ensure_specs
from pipeline.stages.base import Record
from pipeline.stages.table_names import changelog_topic

log = logging.getLogger(__name__)


class ChangelogWrite(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None
    """None: a tombstone (compaction drops the key; recovery deletes it)."""
    partition: int


class ChangelogTable:
    """A ``StageTable`` whose entries are recovered from, and written to, a changelog."""

    def __init__(self, name: str, topic: str, help: str) -> None:
        self.name = name
        self.topic = topic
        self.help = help
        self._data: dict[str, str] = {}
        self._partition_of: dict[str, int] = {}
        self._pending: list[ChangelogWrite] = []
        self._recovered: list[str] = []

    # -- the StageTable interface ---------------------------------------------------------

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def set(self, key: str, value: str, record: Record) -> None:
        self._data[key] = value
        self._partition_of[key] = record.partition
        self._pending.append(
            ChangelogWrite(self.topic, key.encode(), value.encode(), record.partition)
        )

    def delete(self, key: str, partition: int) -> None:
        self._data.pop(key, None)
        self._partition_of.pop(key, None)
        self._pending.append(ChangelogWrite(self.topic, key.encode(), None, partition))

    def held_keys(self) -> list[str]:
        return list(self._data)

    def take_recovered(self) -> list[str]:
        recovered, self._recovered = self._recovered, []
        return recovered

    def __len__(self) -> int:
        return len(self._data)

    # -- for the runtime ------------------------------------------------------------------

    def take_pending(self) -> list[ChangelogWrite]:
        """The changelog records written since the last call, with their partitions."""
        pending, self._pending = self._pending, []
        return pending

    def apply(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        """One changelog record read during recovery (an empty value is a tombstone)."""
        if key is None:
            return
        text = key.decode()
        if value:
            self._data[text] = value.decode()
            self._partition_of[text] = partition
            self._recovered.append(text)
        else:
            self._data.pop(text, None)
            self._partition_of.pop(text, None)

    def forget(self, partitions: Iterable[int]) -> int:
        """Drop the entries of partitions this worker no longer owns; how many."""
        gone = set(partitions)
        keys = [k for k, p in self._partition_of.items() if p in gone]
        for key in keys:
            self._data.pop(key, None)
            del self._partition_of[key]
        return len(keys)


class TableSet:
    """Every changelog table of a worker, by the input topic whose partitions they follow."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.tables: list[tuple[ChangelogTable, str, int]] = []
        """(table, the input topic it is partitioned like, that topic's partitions)."""

    def make(self, name: str, help: str, source_topic: str, partitions: int) -> ChangelogTable:
        table = ChangelogTable(name, changelog_topic(self.group, name), help)
        self.tables.append((table, source_topic, partitions))
        return table

    def take_pending(self) -> list[ChangelogWrite]:
        out: list[ChangelogWrite] = []
        for table, _, _ in self.tables:
            out.extend(table.take_pending())
        return out

    def forget(self, revoked: Iterable[tuple[str, int]]) -> None:
        revoked = list(revoked)
        for table, source, _ in self.tables:
            table.forget(p for t, p in revoked if t == source)

    async def ensure_changelogs(self, bootstrap: str) -> list[str]:
        """Create the changelog topics that are missing (compacted, partitioned like their
        source topic): ``sep up`` creates the default group's; a process layout's group has
        its own."""
        specs = [
            TopicSpec(table.topic, partitions, {"cleanup.policy": "compact"})
            for table, _, partitions in self.tables
        ]
        return await ensure_specs(bootstrap, specs) if specs else []

    async def recover(self, bootstrap: str, assigned: Iterable[tuple[str, int]]) -> int:
        """Read the changelog partitions of newly assigned input partitions to their end."""
        wanted: dict[TopicPartition, ChangelogTable] = {}
        assigned = list(assigned)
        for table, source, _ in self.tables:
            for topic, partition in assigned:
                if topic == source:
                    wanted[TopicPartition(table.topic, partition)] = table
        if not wanted:
            return 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        read = 0
        try:
            consumer.assign(list(wanted))
            await consumer.seek_to_beginning(*wanted)
            ends = await consumer.end_offsets(list(wanted))
            todo = {tp for tp, end in ends.items() if end > 0}
            while todo:
                batches = await consumer.getmany(*todo, timeout_ms=500)
                for tp, records in batches.items():
                    table = wanted[tp]
                    for record in records:
                        table.apply(tp.partition, record.key, record.value)
                        read += 1
                for tp in list(todo):
                    if await consumer.position(tp) >= ends[tp]:
                        todo.discard(tp)
        finally:
            await consumer.stop()
        log.info("tables recovered", extra={"records": read, "partitions": len(wanted)})
        return read
