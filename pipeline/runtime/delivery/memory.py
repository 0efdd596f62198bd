"""The same stage groups with every topic in memory: no broker, deterministic order.

A record produced onto a topic is appended to that topic's in-memory log (on the partition
the Kafka producer would choose) and delivered to every group that reads the topic, in
topology order, until nothing is left to deliver.  Outputs are "acknowledged" at once; the
ledger and runners are the Kafka runtime's own, so what a test sees here -- batches, table
writes, settling, offsets -- is what runs on a broker.  This is the seam the backtest
runtime builds on (a simulated clock and market data driving it).

    feed(topic, key, value) ─► log[topic] ─► group reading topic ─► outputs ─► log[...] ─► ...

A record a stage produced carries the event it encodes (``Record.event``), as a fused stage
hands it to the next: the groups reading its topic get the object, not bytes to decode
again (in a backtest that was 16 decodes per intent, ~9 % of its CPU).  The bytes are what
the log keeps; the event is forgotten once every group reading the topic has had it (kept,
a long run's heap grew by ~100 objects per intent and the garbage collector's full passes
over it cost more than the decoding saved).  With ``MemoryTopics.wire`` set, no record keeps
its event: every group decodes what it reads, as from a broker (only a fused chain's
hand-overs and feedback stay in memory), so a bench measures the workers' decoding too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pipeline.codec import decode_event
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.control.state import ControlState
from pipeline.models.events import Event
from pipeline.runtime.delivery.groups import StageGroup, partition_for
from pipeline.runtime.delivery.ledger import OffsetLedger
from pipeline.runtime.delivery.runner import GroupRunner
from pipeline.runtime.delivery.safety import FailureCounter
from pipeline.runtime.delivery.sink import Headers
from pipeline.stages.base import Output, Record, now_ms


class MemoryTopics:
    """Topics as lists of records; a ``Sink`` that appends and acknowledges at once."""

    def __init__(self, partitions: dict[str, int], clock: Callable[[], int] = now_ms) -> None:
        self.partitions = partitions
        self.log: dict[str, list[Record]] = {}
        self.headers: dict[tuple[str, int], Headers] = {}
        self._next_offset: dict[tuple[str, int], int] = {}
        self._clock = clock
        self.control: ControlState | None = None
        """Where a control change a stage produces is in force at once (as ``feed``'s)."""
        self._acked: asyncio.Future[None] | None = None
        self.readers: dict[str, int] = {}
        """How many groups read each topic: a record keeps its event only for those."""
        self.discard: frozenset[str] = frozenset()
        """Topics whose records are acknowledged and not kept (``keep_changelogs=False``)."""
        self.wire = False
        """Records reach the groups reading a topic as bytes only, as a Kafka worker's do
        (``sep bench stages --wire``); a fused chain still hands over in memory."""

    def append(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers = (),
        timestamp_ms: int | None = None,
        event: Event | None = None,
    ) -> Record:
        if partition is None:
            partition = partition_for(key, self.partitions.get(topic, 1))
        offset = self._next_offset.get((topic, partition), 0)
        self._next_offset[(topic, partition)] = offset + 1
        record = Record.made(
            topic,
            partition,
            offset,
            self._clock() if timestamp_ms is None else timestamp_ms,
            key,
            value or b"",
            event if self.readers.get(topic) and not self.wire else None,
        )
        self.log.setdefault(topic, []).append(record)
        if headers:
            self.headers[(topic, len(self.log[topic]) - 1)] = headers
        return record

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers = (),
        event: Event | None = None,
    ) -> Awaitable[Any]:
        if topic == CONTROL_TOPIC and self.control is not None and value is not None:
            self.control.apply(decode_event(value))  # e.g. a venue breaker execute opened
        if topic not in self.discard:
            self.append(topic, key, value, partition, headers, event=event)
        return self._ack()

    def _ack(self) -> asyncio.Future[None]:
        """The acknowledgement of every record: one resolved future per event loop (a
        future per record, and gather's callback on each, were ~5 % of a backtest; gather
        waits once for a future passed many times)."""
        loop = asyncio.get_running_loop()
        if self._acked is None or self._acked.get_loop() is not loop:
            self._acked = loop.create_future()
            self._acked.set_result(None)
        return self._acked

    def outputs(self, topic: str) -> list[Output]:
        return [Output(r.topic, r.key or b"", r.value) for r in self.log.get(topic, [])]


class MemoryRuntime:
    """Runs ``groups`` over ``MemoryTopics`` until every record has been delivered."""

    def __init__(
        self,
        groups: Sequence[StageGroup],
        partitions: dict[str, int],
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.topics = MemoryTopics(partitions, clock)
        self.ledger = OffsetLedger()
        self.control: ControlState | None = None
        """The stages' control plane (set by ``build_memory_runtime``)."""
        self.ledger.assign((t, p) for t, n in partitions.items() for p in range(n))
        self.counter = FailureCounter()
        self.runners = [
            GroupRunner(
                g, self.topics, self.ledger, counter=self.counter, on_fatal=self._fail, clock=clock
            )
            for g in groups
        ]
        self._cursor: dict[tuple[str, str], int] = {}
        self._readers: dict[str, list[str]] = {}
        for runner in self.runners:
            for topic in runner.group.inputs:
                self._readers.setdefault(topic, []).append(runner.name)
        self.topics.readers = {topic: len(names) for topic, names in self._readers.items()}
        self._released: dict[str, int] = {}
        """Per topic, the records before this index have had every reader (no event kept)."""
        self.fatal: BaseException | None = None

    def _fail(self, exc: BaseException) -> None:
        self.fatal = exc

    def feed(self, topic: str, key: bytes, value: bytes, timestamp_ms: int | None = None) -> None:
        """A record from outside (a producer), e.g. a submission on the input topic.

        A control change (``sep.control``) is in force at once, as a worker's control feed
        would make it within its fetch wait."""
        if topic == CONTROL_TOPIC and self.control is not None:
            self.control.apply(decode_event(value))
        self.topics.append(topic, key, value, timestamp_ms=timestamp_ms)

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Deliver records to the groups, in topology order, until none is new; how many."""
        delivered = 0
        for _ in range(max_rounds):
            moved = 0
            for runner in self.runners:
                moved += await self.deliver(runner)
            if not moved:
                return delivered
            delivered += moved
        raise RuntimeError(f"still delivering after {max_rounds} rounds (a cycle of stages?)")

    async def deliver(self, runner: GroupRunner) -> int:
        """One pass of ``runner`` over what is new on its inputs; how many records.  (A
        backtest runs only the strategy runner on each market record, and the whole
        topology only when that produced something: ``pipeline.backtest.driver``.)"""
        records: list[Record] = []
        for topic in runner.group.inputs:
            log = self.topics.log.get(topic, [])
            start = self._cursor.get((runner.name, topic), 0)
            if start < len(log):
                records += log[start:]
                self._cursor[(runner.name, topic)] = len(log)
                self._release(topic, log)
        if not records:
            return 0
        # A partition's offsets grow along its topic's log, so its last record here is its end.
        ends: dict[tuple[str, int], int] = {}
        for r in records:
            ends[(r.topic, r.partition)] = r.offset + 1
        batch = self.ledger.open(ends, 1)
        acks = await runner.run_pass(records)
        await asyncio.gather(*acks)
        self.ledger.settle_slice(batch)
        return len(records)

    def _release(self, topic: str, log: list[Record]) -> None:
        """Forget the events of ``topic``'s records every reader has had (the bytes stay)."""
        done = min(self._cursor.get((name, topic), 0) for name in self._readers[topic])
        for i in range(self._released.get(topic, 0), done):
            r = log[i]
            if r.event is not None:
                log[i] = Record.made(r.topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value)
        self._released[topic] = max(done, self._released.get(topic, 0))

    def drop_delivered(self, topic: str) -> None:
        """Forget ``topic``'s records once every group reading it has had them (a long
        backtest's market records would otherwise stay in memory); offsets go on."""
        readers = [r.name for r in self.runners if topic in r.group.inputs]
        log = self.topics.log.get(topic, [])
        if any(self._cursor.get((name, topic), 0) < len(log) for name in readers):
            raise RuntimeError(f"{topic}: a group has not had every record yet")
        log.clear()
        self._released[topic] = 0
        for name in readers:
            self._cursor[(name, topic)] = 0
        for key in [k for k in self.topics.headers if k[0] == topic]:
            del self.topics.headers[key]


def build_memory_runtime(
    topology: Any,
    settings: Any,
    stages: Sequence[str] | None = None,
    *,
    fuse: bool = True,
    clock: Callable[[], int] = now_ms,
    venues: dict[str, Any] | None = None,
    keep_changelogs: bool = True,
    feedback: bool | None = None,
) -> tuple[MemoryRuntime, Any]:
    """The topology's stages (or ``stages``) over in-memory topics, with what they use.

    Venues are the topology's own (their pools asked directly: there is no market topic to
    follow), dedupe claims are kept in memory, tables are plain (nothing to recover).  Start
    the returned lifecycle before ``run_until_idle`` and stop it after.  ``venues``: built
    by the caller instead (a backtest's sim venue on its simulated clock).
    ``keep_changelogs=False``: the tables' changelog records are not kept (a run that never
    restarts recovers nothing from them: a backtest's were 7 records an intent).
    ``feedback``: fused feedback edges in memory (``None``: ``settings.fusion_feedback``);
    either way a backtest's event log is the same (checked byte for byte, Session 10).
    """
    from pipeline.plugins.manager import build_venues
    from pipeline.risk.feed import MemoryRiskFeed
    from pipeline.runtime.assembly import build_groups
    from pipeline.runtime.delivery.tables import ChangelogTable, TableSet
    from pipeline.runtime.lifecycle import Lifecycle
    from pipeline.stages.base import StageContext
    from pipeline.store.dedupe import MemoryDedupeStore

    control = ControlState()
    risk = MemoryRiskFeed(topology)
    context = StageContext(
        topology=topology,
        settings=settings,
        venues=venues if venues is not None else build_venues(topology, settings.data_dir),
        clock=clock,
        dedupe=MemoryDedupeStore(settings.dedupe_ttl_s, clock=clock),
        control=control,
        risk=risk,
    )
    lifecycle = Lifecycle(context)
    tables = TableSet("memory")
    feedback = settings.fusion_feedback if feedback is None else feedback
    groups = build_groups(topology, context, lifecycle, tables, stages, fuse, feedback)
    partitions = {t.name: t.partitions for t in topology.topics}
    runtime = MemoryRuntime(groups, partitions, clock=clock)
    if not keep_changelogs:
        runtime.topics.discard = frozenset(
            table.topic for table, _, _ in tables.tables if isinstance(table, ChangelogTable)
        )
    runtime.control = runtime.topics.control = control
    risk.attach(runtime.topics.log, runtime.feed)  # the book reads the topics; breakers publish
    return runtime, lifecycle
