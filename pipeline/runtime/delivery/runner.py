"""One task per stage group: take queued slices as one batch, run the group's pass, settle.

    fetch batch ─► slice for this group ─► queue ─► [slice, slice, ...] ─► pass:
        stage 1 (records from Kafka)  ─► outputs ─► sink (and, fused, in memory ─►)
        stage 2 (handed records + its own Kafka inputs) ─► outputs ─► sink ...
        each stage's table writes ─► sink (their changelogs)
    ─► settle task: every acknowledgement of the pass ─► ledger.settle_slice(each slice)

A fed-back topic (``StageGroup.feedback``: execute's reports, read by plan) is sent like any
output and also kept here; the next pass gives what was kept to its reader first, before its
Kafka and handed records.  Kept records are not offsets: nothing settles on them.  A pass is
not started for them alone: the reader takes them with the next records it is given (the
planner needs its reports before it plans, and plans only what comes from Kafka).

Delivery is pipelined: the runner takes its next batch while the broker acknowledges the
last one's outputs (waiting 10-30 ms per hop for acks had every record queue behind the
previous batch's round trip).  At most ``MAX_UNSETTLED`` passes are awaiting acks.

So is a fused group's last stage, with ``pipelined_tail`` (execute, in the default chain):
a pass ends when the stage before it has handed its records over, and the last stage runs
them in a task of its own, after the previous pass's last stage (its passes stay in order),
while the next pass plans.  Planning no longer waits for the previous batch's executions
(each of which awaits its venue several loop iterations, or a chain's receipts); the pass's
slices settle when its last stage is done and every output acknowledged, so a crash before
then redelivers the whole pass, as before.

    pass N:   validate ─► prioritise ─► plan ─┐          pass N+1: validate ─► ... ─► plan ─┐
                                              └─► tail N: execute ──► tail N+1: execute ◄─┘

Passes that queue behind a tail still running have their last stage run as one batch when it
ends (N+1 and N+2 together, say): a tail takes a few turns of the loop whatever its size (a
venue's submissions, then its receipts), so tails run one per pass fell behind when passes
came faster than that (measured with faster fetches: pass → exec.completed p50 13 → 60 ms at
500/s).  Each of those passes settles when that batch is done and all its outputs are
acknowledged.

With priority lanes (``topology.yaml`` ``lanes:``, ``pipeline.runtime.delivery.lanes``) a
scheduled group keeps a queue per lane and one for its other inputs, and takes each pass
from the lanes by weight, highest lane first; a pass may take part of a slice (the ledger
splits it: each part settles on its own).  With a ``PassSizer`` a pass is sized to a time
budget as well as to ``batch.max``.

    put(slice) ─► by topic: [fast] [normal] [bulk] [other inputs]
    pass:  allocate(queued, capacity) ─► fast[:a] + normal[:b] + bulk[:c] + other (all)
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pipeline.runtime.delivery.groups import StageGroup, StageNode, partition_for
from pipeline.runtime.delivery.lanes import Lane, PassSizer, allocate, to_pause
from pipeline.runtime.delivery.ledger import FetchBatch, OffsetLedger
from pipeline.runtime.delivery.safety import FailureCounter, process_safely
from pipeline.runtime.delivery.sink import Sink, send_output
from pipeline.runtime.delivery.tables import ChangelogTable
from pipeline.stages.base import Output, Record, now_ms

log = logging.getLogger(__name__)

MAX_UNSETTLED = 4
"""Passes of one group whose outputs may still be awaiting the broker's acknowledgement."""

PassResult = tuple[list[Awaitable[Any]], "asyncio.Future[None] | None"]
"""A pass's acknowledgements to await, and its tail still running (``pipelined_tail``)."""


@dataclass
class TailWork:
    """A pass's records for the group's last stage, run after the pass (``pipelined_tail``)."""

    batch: list[Record]
    emit: Callable[[Output], Awaitable[None]]
    acks: list[Awaitable[Any]]
    done: asyncio.Future[None]


class GroupStats:
    """What the pipeline view and ``/health`` show of a group."""

    def __init__(self) -> None:
        self.batches = 0
        self.records = 0
        self.outputs = 0
        self.last_batch_at = 0.0
        self.process_s = 0.0


class SliceQueue:
    """Slices of fetch batches in fetch order; a take may split the first one."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[FetchBatch, list[Record]]] = collections.deque()
        self.records = 0

    def put(self, batch: FetchBatch, records: list[Record]) -> None:
        self.items.append((batch, records))
        self.records += len(records)

    def take(self, n: int, ledger: OffsetLedger) -> tuple[list[FetchBatch], list[Record]]:
        """Up to ``n`` records from the front, and the slices they settle."""
        slices: list[FetchBatch] = []
        out: list[Record] = []
        while self.items and len(out) < n:
            batch, part = self.items[0]
            room = n - len(out)
            if len(part) <= room:
                self.items.popleft()
                out.extend(part)
            else:
                ledger.split_slice(batch)  # the part taken settles on its own
                self.items[0] = (batch, part[room:])
                out.extend(part[:room])
            slices.append(batch)
        self.records -= len(out)
        return slices, out

    def abandon(self, ledger: OffsetLedger) -> int:
        dropped = 0
        while self.items:
            batch, records = self.items.popleft()
            dropped += len(records)
            ledger.abandon_slice(batch)
        self.records = 0
        return dropped


class LaneStats:
    """One lane of a scheduled group: what the pipeline view, ``/metrics`` and ``sep status``
    show (records taken, and how long they had waited in this worker since ingest wrote
    them: the record's timestamp is ingest's send time)."""

    def __init__(self) -> None:
        self.records = 0
        self.wait_ms_sum = 0.0
        self.wait_ms_max = 0.0
        """The longest wait since the last health report (reset by ``take_max``)."""

    def observe(self, records: list[Record], now_ms: int) -> None:
        self.records += len(records)
        for record in records:
            wait = max(0, now_ms - record.timestamp_ms)
            self.wait_ms_sum += wait
            if wait > self.wait_ms_max:
                self.wait_ms_max = wait

    def take_max(self) -> float:
        top, self.wait_ms_max = self.wait_ms_max, 0.0
        return top


class GroupRunner:
    def __init__(
        self,
        group: StageGroup,
        sink: Sink,
        ledger: OffsetLedger,
        *,
        counter: FailureCounter,
        on_fatal: Callable[[BaseException], None],
        clock: Callable[[], int] = now_ms,
        trace: bool = False,
        lanes: tuple[Lane, ...] = (),
        sizer: PassSizer | None = None,
        pipelined_tail: bool = False,
        shares_loop: bool = True,
    ) -> None:
        self.group = group
        self.within_s = group.within_s if shares_loop else 0.0
        """How long a pass waits for more records (``batch.within_ms``).  The wait leaves the
        loop to the worker's other groups (project's, beside the chain); a group alone in its
        process (``shares_loop`` False: project in the split layout) has nobody to leave it
        to, and waiting only delayed its events by ~10 ms: event -> WebSocket p50 at 200/s
        33-44 ms without it, 49-61 with (bench/RESULTS.md, Session 18)."""
        self.pipelined_tail = pipelined_tail and len(group.nodes) > 1
        """The group's last stage runs each pass's records after the pass, in order, while
        the next pass runs (module docstring)."""
        self._tail: asyncio.Future[None] | None = None
        """The last pass's tail (``pipelined_tail``): done when its records have been run."""
        self._tails: list[TailWork] = []
        """Passes whose last stage has not started yet."""
        self._tail_runner: asyncio.Future[None] | None = None
        self._sink = sink
        self._ledger = ledger
        self._counter = counter
        self._on_fatal = on_fatal
        self._clock = clock
        self._trace = trace
        self.stage_ms: dict[str, float] = {}
        """With ``trace``: each stage's wall time in the last pass (its awaits included)."""
        self.waited_ms: tuple[int, int] | None = None
        """With ``trace``: the newest and oldest Kafka record's age as the last pass began."""
        self._queue: collections.deque[tuple[FetchBatch, list[Record]]] = collections.deque()
        self._queued_records = 0
        self._wake = asyncio.Event()
        self._unsettled: collections.deque[asyncio.Task[None]] = collections.deque()
        self._direct = [set(group.kafka_inputs_of(i)) for i in range(len(group.nodes))]
        # The first stage takes the whole pass unless the group reads topics it does not (a
        # fused planner's execution reports): then only its own, like every later stage.
        self._first_takes_all = self._direct[0] >= set(group.inputs)
        self._fed_back = [group.fed_back_from(i) for i in range(len(group.nodes))]
        self._kept: dict[int, list[Record]] = {}
        """Fed-back records for the next pass, by the index of the stage reading them."""
        self._running: asyncio.Future[PassResult] | None = None
        self.stats = GroupStats()
        self.lanes = lanes
        """Scheduled by lane (empty: slices in fetch order, as without lanes)."""
        self.sizer = sizer
        self._lane_queues = [SliceQueue() for _ in lanes]
        self._other = SliceQueue()
        self._lane_index = {lane.topic: i for i, lane in enumerate(lanes)}
        self.lane_stats = {lane.topic: LaneStats() for lane in lanes}

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def depth(self) -> int:
        """Records queued for this group, not yet taken into a pass."""
        return self._queued_records

    @property
    def lane_depths(self) -> dict[str, int]:
        """Records queued per lane topic (a scheduled group)."""
        return {
            lane.topic: q.records for lane, q in zip(self.lanes, self._lane_queues, strict=True)
        }

    @property
    def capacity(self) -> int:
        """Records the next pass may take: ``batch.max``, or fewer to fit the time budget."""
        batch_max = self.group.batch_max
        return batch_max if self.sizer is None else self.sizer.capacity(batch_max)

    def lanes_to_pause(self) -> set[str]:
        """Lane topics the consumer should not fetch now (``lanes.to_pause``)."""
        if not self.lanes:
            return set()
        return to_pause([q.records for q in self._lane_queues], self.lanes, self.capacity)

    def abandon_queued(self) -> int:
        """Drop the slices not yet taken into a pass (their partitions are being revoked:
        another worker will fetch them from the committed offset); how many records."""
        if self.lanes or self.sizer is not None:
            dropped = sum(q.abandon(self._ledger) for q in (*self._lane_queues, self._other))
            self._queued_records = 0
            self._wake.clear()
            return dropped
        dropped = 0
        while self._queue:
            batch, records = self._queue.popleft()
            dropped += len(records)
            self._ledger.abandon_slice(batch)
        self._queued_records = 0
        self._wake.clear()
        return dropped

    async def finish_running(self, within_s: float) -> bool:
        """Wait for the pass under way, if any, its tail and its acknowledgements; whether
        the pass and its tail are done."""
        if self._running is not None:
            await asyncio.wait([self._running], timeout=within_s)
        await self.settle_all(within_s)  # a pass's settle waits for its tail
        return (self._running is None or self._running.done()) and (
            self._tail is None or self._tail.done()
        )

    def cancel_running(self) -> None:
        """Cancel the pass under way and its tail (a stop past its bound): never settled."""
        if self._running is not None and not self._running.done():
            self._running.cancel()
        if self._tail_runner is not None and not self._tail_runner.done():
            self._tail_runner.cancel()  # its passes' futures are cancelled with it
        for work in self._tails:
            work.done.cancel()

    def put(self, batch: FetchBatch, records: list[Record]) -> None:
        self._queued_records += len(records)
        self._wake.set()
        if not self.lanes:
            if self.sizer is None:
                self._queue.append((batch, records))
            else:
                self._other.put(batch, records)
            return
        parts: dict[int, list[Record]] = {}
        other = len(self.lanes)
        for record in records:
            parts.setdefault(self._lane_index.get(record.topic, other), []).append(record)
        for _ in range(len(parts) - 1):
            self._ledger.split_slice(batch)  # one slice per lane it touches
        for i, part in parts.items():
            (self._other if i == other else self._lane_queues[i]).put(batch, part)

    def _take(self) -> tuple[list[FetchBatch], list[Record]]:
        """The next pass's records and the slices they settle."""
        capacity = self.capacity
        if not self.lanes:
            return self._other.take(capacity, self._ledger)
        counts = allocate([q.records for q in self._lane_queues], self.lanes, capacity)
        slices: list[FetchBatch] = []
        records: list[Record] = []
        now = self._clock()
        for lane, queue, n in zip(self.lanes, self._lane_queues, counts, strict=True):
            if n:
                taken, part = queue.take(n, self._ledger)
                slices += taken
                records += part
                self.lane_stats[lane.topic].observe(part, now)
        # The group's other inputs (an unfused planner's execution reports; fused, they are
        # fed back in memory) are not lane work: all of them, so the planner's view of its
        # pools never lags behind its plans.
        taken, part = self._other.take(self._other.records, self._ledger)
        return slices + taken, records + part

    async def run(self) -> None:
        group = self.group
        while True:
            await self._wake.wait()
            if self.within_s > 0 and self._queued_records < group.batch_max:
                await asyncio.sleep(self.within_s)  # let a few more arrive (project)
            slices: list[FetchBatch] = []
            records: list[Record] = []
            if self.lanes or self.sizer is not None:
                slices, records = self._take()
            while self._queue and (not records or len(records) < group.batch_max):
                batch, part = self._queue.popleft()
                slices.append(batch)
                records.extend(part)
            self._queued_records -= len(records)
            if not self._queued_records:
                self._wake.clear()
            started = time.perf_counter()
            if self._trace and records:
                # How long the pass's records waited since their producer sent them.
                wall = time.time_ns() // 1_000_000
                stamps = [r.timestamp_ms for r in records if r.offset >= 0]
                self.waited_ms = (wall - max(stamps), wall - min(stamps)) if stamps else None
            self._running = asyncio.ensure_future(self._pass(records, self.pipelined_tail))
            try:
                # shielded: a revoke waits for this pass rather than cancelling it midway
                acks, tail = await asyncio.shield(self._running)
            finally:
                self._running = None
            took = time.perf_counter() - started
            if self.sizer is not None:
                # Per lane record: the pass's other inputs (the planner's execution reports,
                # several per planned intent) come with the lane records that caused them,
                # so they are part of each lane record's cost, not records of their own.
                laned = sum(1 for r in records if r.topic in self._lane_index)
                self.sizer.observe(laned if self.lanes else len(records), took)
            stats = self.stats
            stats.batches += 1
            stats.records += len(records)
            stats.outputs += len(acks)
            stats.process_s += took
            stats.last_batch_at = time.monotonic()
            if self._trace:
                log.info(
                    "batch",
                    extra={
                        "group": self.name,
                        "records": len(records),
                        "outputs": len(acks),
                        "process_ms": round(took * 1e3, 2),
                        "stage_ms": self.stage_ms,
                        "waited_ms": self.waited_ms,
                    },
                )
            self._unsettled.append(asyncio.ensure_future(self._settle(slices, acks, tail)))
            while self._unsettled and self._unsettled[0].done():
                self._unsettled.popleft()
            while len(self._unsettled) > MAX_UNSETTLED:
                await self._unsettled.popleft()

    async def _settle(
        self,
        slices: list[FetchBatch],
        acks: list[Awaitable[Any]],
        tail: asyncio.Future[None] | None = None,
    ) -> None:
        ok = True
        if tail is not None:
            try:
                await tail  # its outputs join ``acks`` as it emits them
            except Exception as exc:  # the last stage failed as a whole pass would have
                log.exception("the pass's last stage failed", extra={"group": self.name})
                self._on_fatal(exc)
                return  # never settled: redelivered
        try:
            await asyncio.gather(*acks)
        except Exception as exc:  # the broker refused or timed out: nothing here is done
            ok = False
            log.error(
                "outputs not acknowledged; the batch will be redelivered",
                extra={"group": self.name, "error": repr(exc)},
            )
            self._on_fatal(exc)
        for batch in slices:
            self._ledger.settle_slice(batch, ok)

    async def run_pass(self, records: list[Record]) -> list[Awaitable[Any]]:
        """Run every stage of the group over ``records``; the acknowledgements to await."""
        acks, _tail = await self._pass(records, pipelined=False)
        return acks

    async def _pass(self, records: list[Record], pipelined: bool) -> PassResult:
        """A pass over ``records``: the acknowledgements to await (the list grows while the
        tail runs) and, ``pipelined``, the task running the last stage (else None: done)."""
        group, sink = self.group, self._sink
        acks: list[Awaitable[Any]] = []
        handed: list[Record] = []
        # What later stages fed back since the last pass (this pass's feedback is the next's).
        kept, self._kept = self._kept, {}
        last = len(group.nodes) - 1
        for index, node in enumerate(group.nodes):
            direct = self._direct[index]
            if index or not self._first_takes_all:  # its own Kafka inputs only
                batch = [r for r in records if r.topic in direct] if direct else []
            else:
                batch = records
            if index in kept:  # reports of earlier passes first, as Kafka would order them
                batch = kept[index] + batch
            batch += handed
            handed = []
            handoff = group.handoff[index] if index < last else None
            partitions = group.partitions[handoff] if handoff is not None else 0

            async def emit(
                out: Output,
                handoff: str | None = handoff,
                partitions: int = partitions,
                handed: list[Record] = handed,
                node: StageNode = node,
                fed_back: dict[str, tuple[int, ...]] = self._fed_back[index],
            ) -> None:
                # The stage's decisions go out before the outputs they decided: a crash in
                # between leaves a decision without outputs (re-emitted on redelivery), never
                # outputs without their decision (which a redelivery could contradict).
                # (Only a stage with changelog tables can have writes: the others skip a
                # coroutine per output.)
                # (Read at each output: a stage may make a table mid-pass, as the strategy
                # runner does for a strategy it loads.)
                if node.tables and (writing := node.writing_tables):
                    await self._send_table_writes(writing, acks)
                if out.topic == handoff:
                    partition = partition_for(out.key, partitions)
                    acks.append(await send_output(sink, out, partition))
                    handed.append(self._in_memory(out, partition))
                else:
                    acks.append(await send_output(sink, out))
                    readers = fed_back.get(out.topic)
                    if readers is not None:
                        # Kept on self, not this pass: an emit after the pass (a late
                        # receipt) still reaches the reader, in the pass after it.
                        record = self._in_memory(
                            out, partition_for(out.key, group.partitions[out.topic])
                        )
                        for reader in readers:
                            self._kept.setdefault(reader, []).append(record)

            if pipelined and index == last:
                work = TailWork(batch, emit, acks, asyncio.get_running_loop().create_future())
                self._tails.append(work)
                self._tail = work.done
                if self._tail_runner is None or self._tail_runner.done():
                    self._tail_runner = asyncio.ensure_future(self._run_tails(node))
                return acks, work.done
            await self._run_node(node, batch, emit, acks)
        return acks, None

    async def _run_node(
        self,
        node: StageNode,
        batch: list[Record],
        emit: Callable[[Output], Awaitable[None]],
        acks: list[Awaitable[Any]],
    ) -> None:
        began = time.perf_counter()
        if batch:
            await process_safely(node.processor, batch, emit, self._counter)
        if node.tables and (writing := node.writing_tables):
            await self._send_table_writes(writing, acks)
        if self._trace:
            self.stage_ms[node.spec.name] = round((time.perf_counter() - began) * 1e3, 2)

    async def _run_tails(self, node: StageNode) -> None:
        """The last stage over the passes' records, in pass order.  The passes queued while
        it ran are run as one batch (a pass's slices settle when the batch that held its
        records is done and every output of that batch is acknowledged): a tail's turns of
        the loop (a venue's submissions, then its receipts) no longer add up pass after
        pass when passes come faster than tails end."""
        while self._tails:
            work, self._tails = self._tails, []
            first = work[0]
            mark = len(first.acks)
            try:
                batch = first.batch if len(work) == 1 else [r for w in work for r in w.batch]
                await self._run_node(node, batch, first.emit, first.acks)
            except BaseException as exc:  # each pass's settle hears of it (never settled)
                for w in work:
                    if not w.done.done():
                        if isinstance(exc, asyncio.CancelledError):
                            w.done.cancel()
                        else:
                            w.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    for w in self._tails:
                        w.done.cancel()
                    raise
                continue
            outputs = first.acks[mark:]
            for w in work[1:]:
                w.acks.extend(outputs)  # acks are futures: awaiting one twice is fine
            for w in work:
                if not w.done.done():
                    w.done.set_result(None)

    def _in_memory(self, out: Output, partition: int) -> Record:
        """``out`` as the record a stage of this group reads in memory (no offset)."""
        return Record.made(out.topic, partition, -1, self._clock(), out.key, out.value, out.event)

    async def _send_table_writes(
        self, tables: list[ChangelogTable], acks: list[Awaitable[Any]]
    ) -> None:
        for table in tables:
            for write in table.take_pending():
                acks.append(
                    await self._sink.send(
                        write.topic, write.key, write.value, partition=write.partition
                    )
                )

    async def settle_all(self, within_s: float) -> None:
        """Wait for the passes awaiting acknowledgement (a graceful stop)."""
        if self._unsettled:
            await asyncio.wait(list(self._unsettled), timeout=within_s)
