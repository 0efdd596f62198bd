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
import time
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.runtime.delivery.entries import TableEntries
from pipeline.runtime.delivery.sourced import FINAL_EVENTS, SourcedTable
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


class ChangelogTable(TableEntries):
    """A ``StageTable`` whose entries are recovered from, and written to, a changelog."""

    def __init__(self, name: str, topic: str, help: str) -> None:
        super().__init__(name, topic, help)
        self._pending: list[ChangelogWrite] = []

    def set(self, key: str, value: str, record: Record) -> None:
        super().set(key, value, record)
        self._pending.append(
            ChangelogWrite(self.topic, key.encode(), value.encode(), record.partition)
        )

    def delete(self, key: str, partition: int) -> None:
        super().delete(key, partition)
        self._pending.append(ChangelogWrite(self.topic, key.encode(), None, partition))

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
            self._recover(text, value.decode(), partition)
        else:
            self._data.pop(text, None)
            self._partition_of.pop(text, None)


Table = ChangelogTable | SourcedTable

DECISIONS_FROM = ("events", "changelog")
"""Where validate's, prioritise's and plan's remembered decisions are recovered from
(``SEP_DECISIONS_FROM``): ``events``, the stages' own events topics (``sourced.py``: no
changelog records), or ``changelog``, a changelog topic per table as execute's openings
always are."""


class TableSet:
    """Every table of a worker, by the input topic whose partitions they follow.

    ``decisions_from="events"``: a table of ``sourced.FINAL_EVENTS`` whose stage's events
    topic has the source topic's partition count (``topic_partitions``) is a ``SourcedTable``;
    every other table is a ``ChangelogTable``."""

    def __init__(
        self,
        group: str,
        *,
        decisions_from: str = "changelog",
        topic_partitions: Mapping[str, int] | None = None,
        ttl_s: float = 300.0,
    ) -> None:
        if decisions_from not in DECISIONS_FROM:
            raise ValueError(
                f"decisions_from must be one of {', '.join(DECISIONS_FROM)}, not {decisions_from!r}"
            )
        self.group = group
        self.decisions_from = decisions_from
        self.ttl_ms = int(ttl_s * 1000)
        """How far back a sourced table's recovery reads (the decisions' TTL)."""
        self._topic_partitions = dict(topic_partitions or {})
        self.tables: list[tuple[Table, str, int]] = []
        """(table, the input topic it is partitioned like, that topic's partitions)."""

    def make(
        self,
        name: str,
        help: str,
        source_topic: str,
        partitions: int,
        events_topic: str | None = None,
    ) -> Table:
        """The table ``name`` of a stage reading ``source_topic`` (``partitions``) whose
        events go to ``events_topic``."""
        table: Table
        if (
            self.decisions_from == "events"
            and name in FINAL_EVENTS
            and events_topic is not None
            and self._topic_partitions.get(events_topic) == partitions
        ):
            table = SourcedTable(name, events_topic, help, FINAL_EVENTS[name])
        else:
            table = ChangelogTable(name, changelog_topic(self.group, name), help)
        self.tables.append((table, source_topic, partitions))
        return table

    def take_pending(self) -> list[ChangelogWrite]:
        out: list[ChangelogWrite] = []
        for table, _, _ in self.tables:
            if isinstance(table, ChangelogTable):
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
            if isinstance(table, ChangelogTable)
        ]
        return await ensure_specs(bootstrap, specs) if specs else []

    async def recover(
        self, bootstrap: str, assigned: Iterable[tuple[str, int]], *, now_ms: int | None = None
    ) -> int:
        """Read the tables' partitions of newly assigned input partitions to their end: a
        changelog from its start, a sourced table's events topic from its TTL ago
        (``ttl_ms``; see ``sourced.py``)."""
        changelogs: dict[TopicPartition, ChangelogTable] = {}
        sourced: dict[TopicPartition, SourcedTable] = {}
        assigned = list(assigned)
        for table, source, _ in self.tables:
            for topic, partition in assigned:
                if topic != source:
                    continue
                if isinstance(table, ChangelogTable):
                    changelogs[TopicPartition(table.topic, partition)] = table
                else:
                    sourced[TopicPartition(table.topic, partition)] = table
        if not changelogs and not sourced:
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
            wanted = [*changelogs, *sourced]
            consumer.assign(wanted)
            ends = await consumer.end_offsets(wanted)
            if changelogs:
                await consumer.seek_to_beginning(*changelogs)
            if sourced:
                since = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) - self.ttl_ms
                starts = await consumer.offsets_for_times({tp: since for tp in sourced})
                for tp in sourced:
                    found = starts.get(tp)
                    consumer.seek(tp, found.offset if found is not None else ends[tp])
            todo = {tp for tp in wanted if ends[tp] > await consumer.position(tp)}
            while todo:
                batches = await consumer.getmany(*todo, timeout_ms=500)
                for tp, records in batches.items():
                    changelog = changelogs.get(tp)
                    for record in records:
                        if record.offset >= ends[tp]:
                            continue  # written after the recovery began: not a redelivery's
                        if changelog is not None:
                            changelog.apply(tp.partition, record.key, record.value)
                        else:
                            sourced[tp].gather(
                                tp.partition, record.key, record.value, record.headers
                            )
                        read += 1
                for tp in list(todo):
                    if await consumer.position(tp) >= ends[tp]:
                        todo.discard(tp)
        finally:
            await consumer.stop()
        answers = sum(table.finish(tp.partition) for tp, table in sourced.items())
        log.info(
            "tables recovered",
            extra={
                "records": read,
                "partitions": len(changelogs) + len(sourced),
                "answers_from_events": answers,
            },
        )
        return read
