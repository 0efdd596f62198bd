"""One task per stage group: take queued slices as one batch, run the group's pass, settle.

    fetch batch ─► slice for this group ─► queue ─► [slice, slice, ...] ─► pass:
        stage 1 (records from Kafka)  ─► outputs ─► sink (and, fused, in memory ─►)
        stage 2 (handed records + its own Kafka inputs) ─► outputs ─► sink ...
        each stage's table writes ─► sink (their changelogs)
    ─► settle task: every acknowledgement of the pass ─► ledger.settle_slice(each slice)

Delivery is pipelined: the runner takes its next batch while the broker acknowledges the
last one's outputs (waiting 10-30 ms per hop for acks had every record queue behind the
previous batch's round trip).  At most ``MAX_UNSETTLED`` passes are awaiting acks.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.runtime.delivery.groups import StageGroup, StageNode, partition_for
from pipeline.runtime.delivery.ledger import FetchBatch, OffsetLedger
from pipeline.runtime.delivery.safety import FailureCounter, process_safely
from pipeline.runtime.delivery.sink import Sink, send_output
from pipeline.stages.base import Output, Record, now_ms

log = logging.getLogger(__name__)

MAX_UNSETTLED = 4
"""Passes of one group whose outputs may still be awaiting the broker's acknowledgement."""


class GroupStats:
    """What the pipeline view and ``/health`` show of a group."""

    def __init__(self) -> None:
        self.batches = 0
        self.records = 0
        self.outputs = 0
        self.last_batch_at = 0.0
        self.process_s = 0.0


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
    ) -> None:
        self.group = group
        self._sink = sink
        self._ledger = ledger
        self._counter = counter
        self._on_fatal = on_fatal
        self._clock = clock
        self._trace = trace
        self._queue: collections.deque[tuple[FetchBatch, list[Record]]] = collections.deque()
        self._queued_records = 0
        self._wake = asyncio.Event()
        self._unsettled: collections.deque[asyncio.Task[None]] = collections.deque()
        self._direct = [set(group.kafka_inputs_of(i)) for i in range(len(group.nodes))]
        self._running: asyncio.Future[list[Awaitable[Any]]] | None = None
        self.stats = GroupStats()

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def depth(self) -> int:
        """Records queued for this group, not yet taken into a pass."""
        return self._queued_records

    def abandon_queued(self) -> int:
        """Drop the slices not yet taken into a pass (their partitions are being revoked:
        another worker will fetch them from the committed offset); how many records."""
        dropped = 0
        while self._queue:
            batch, records = self._queue.popleft()
            dropped += len(records)
            self._ledger.abandon_slice(batch)
        self._queued_records = 0
        self._wake.clear()
        return dropped

    async def finish_running(self, within_s: float) -> bool:
        """Wait for the pass under way, if any, and its acknowledgements."""
        if self._running is not None:
            await asyncio.wait([self._running], timeout=within_s)
        await self.settle_all(within_s)
        return self._running is None or self._running.done()

    def cancel_running(self) -> None:
        """Cancel the pass under way (a stop past its bound): it is never settled."""
        if self._running is not None and not self._running.done():
            self._running.cancel()

    def put(self, batch: FetchBatch, records: list[Record]) -> None:
        self._queue.append((batch, records))
        self._queued_records += len(records)
        self._wake.set()

    async def run(self) -> None:
        group = self.group
        while True:
            await self._wake.wait()
            if group.within_s > 0 and self._queued_records < group.batch_max:
                await asyncio.sleep(group.within_s)  # let a few more arrive (project)
            slices: list[FetchBatch] = []
            records: list[Record] = []
            while self._queue and (not records or len(records) < group.batch_max):
                batch, part = self._queue.popleft()
                slices.append(batch)
                records.extend(part)
            self._queued_records -= len(records)
            if not self._queue:
                self._wake.clear()
            started = time.perf_counter()
            self._running = asyncio.ensure_future(self.run_pass(records))
            try:
                # shielded: a revoke waits for this pass rather than cancelling it midway
                acks = await asyncio.shield(self._running)
            finally:
                self._running = None
            took = time.perf_counter() - started
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
                    },
                )
            self._unsettled.append(asyncio.ensure_future(self._settle(slices, acks)))
            while self._unsettled and self._unsettled[0].done():
                self._unsettled.popleft()
            while len(self._unsettled) > MAX_UNSETTLED:
                await self._unsettled.popleft()

    async def _settle(self, slices: list[FetchBatch], acks: list[Awaitable[Any]]) -> None:
        ok = True
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
        group, sink = self.group, self._sink
        acks: list[Awaitable[Any]] = []
        handed: list[Record] = []
        last = len(group.nodes) - 1
        for index, node in enumerate(group.nodes):
            direct = self._direct[index]
            batch = [r for r in records if r.topic in direct] if index else records
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
            ) -> None:
                # The stage's decisions go out before the outputs they decided: a crash in
                # between leaves a decision without outputs (re-emitted on redelivery), never
                # outputs without their decision (which a redelivery could contradict).
                await self._send_table_writes(node, acks)
                if out.topic == handoff:
                    partition = partition_for(out.key, partitions)
                    acks.append(await send_output(sink, out, partition))
                    handed.append(
                        Record(
                            out.topic,
                            partition,
                            -1,
                            self._clock(),
                            out.key,
                            out.value,
                            event=out.event,
                        )
                    )
                else:
                    acks.append(await send_output(sink, out))

            if batch:
                await process_safely(node.processor, batch, emit, self._counter)
            await self._send_table_writes(node, acks)
        return acks

    async def _send_table_writes(self, node: StageNode, acks: list[Awaitable[Any]]) -> None:
        for table in node.tables:
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
