"""The offset ledger: which input offsets may be committed, decided batch by batch.

The consumer loop fetches a *fetch batch* (every record ``getmany`` returned, across
partitions) and hands slices of it to the stage groups that read those topics.  A fetch batch
is *settled* when every slice has been processed and every output it caused has been
acknowledged by the broker.  Offsets become committable in fetch order only: a later batch
that settles first waits for the earlier ones, so a commit never passes over a record that
is still being processed (or that failed).

    fetch  [b1: p0@10..14, p3@7..9]  [b2: p0@15..20]        (b2 settles before b1)
    settle                          b2 done -> nothing yet, b1 is still open
    settle b1 done -> committable p0: 21, p3: 10

A rebalance starts a new *generation*: batches fetched before it may still settle (their
outputs are valid and idempotent), but they no longer move offsets of partitions this worker
lost, and the committable map is rebuilt from what the new assignment starts at.

Pure bookkeeping, no I/O: the runtime owns the consumer and calls ``committable()``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass(eq=False)
class FetchBatch:
    """One ``getmany`` result in flight: its end offsets and the slices not yet settled."""

    ends: dict[TopicPartition, int]
    """partition -> the offset after its last record in this batch."""
    generation: int
    records: int = 0
    open_slices: int = 0
    failed: bool = False
    abandoned: bool = False
    """Some slice was dropped unprocessed (its partitions were being revoked): nothing from
    here on may be committed in this generation; the records are fetched again."""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def settled(self) -> bool:
        return self.done.is_set() and not self.failed


class OffsetLedger:
    """Fetch batches in flight, in fetch order, and the offsets they made committable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._moved_at: dict[TopicPartition, float] = {}
        """When each partition's committed offset last moved (or it was assigned)."""
        self.generation = 0
        self._assigned: set[TopicPartition] = set()
        self._inflight: collections.deque[FetchBatch] = collections.deque()
        self._committable: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self.blocked = False
        """A batch failed for good: nothing after it may be committed until a restart."""
        self._abandoned_in = -1
        """The generation in which a batch was abandoned (nothing after it is committed)."""
        self.inflight_records = 0
        """Records of the batches in flight (``open``'s ``records``)."""
        self._a_batch_done = asyncio.Event()
        """Set whenever a batch is done: what ``wait_for_a_batch`` waits for."""

    # -- assignment -----------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """A new assignment (a new generation): forget what belonged to the old one."""
        self.generation += 1
        self._assigned = set(partitions)
        now = self._clock()
        self._moved_at = {tp: self._moved_at.get(tp, now) for tp in self._assigned}
        self._committable = {tp: o for tp, o in self._committable.items() if tp in self._assigned}
        self._committed = {tp: o for tp, o in self._committed.items() if tp in self._assigned}

    def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        gone = set(partitions)
        self._assigned -= gone
        for tp in gone:
            self._committable.pop(tp, None)
            self._committed.pop(tp, None)

    @property
    def assigned(self) -> frozenset[TopicPartition]:
        return frozenset(self._assigned)

    # -- batches --------------------------------------------------------------------------

    def open(self, ends: Mapping[TopicPartition, int], slices: int, records: int = 0) -> FetchBatch:
        """Register a fetched batch of ``records`` that ``slices`` stage groups will process."""
        batch = FetchBatch(dict(ends), self.generation, records=records, open_slices=slices)
        self._inflight.append(batch)
        self.inflight_records += records
        if slices == 0:
            self._close(batch)
        return batch

    def split_slice(self, batch: FetchBatch) -> None:
        """One slice of ``batch`` becomes two that settle on their own (a pass took part of
        it, by lane or by size): the batch is done only when both are, so offsets still
        become committable in fetch order, never past a record left queued."""
        batch.open_slices += 1

    def abandon_slice(self, batch: FetchBatch) -> None:
        """One slice of ``batch`` was dropped unprocessed (a rebalance): see ``abandoned``."""
        batch.abandoned = True
        self.settle_slice(batch)

    def settle_slice(self, batch: FetchBatch, ok: bool = True) -> None:
        """One slice of ``batch`` is processed and its outputs acknowledged (or failed)."""
        if not ok:
            batch.failed = True
        batch.open_slices -= 1
        if batch.open_slices <= 0:
            self._close(batch)

    def _close(self, batch: FetchBatch) -> None:
        batch.done.set()
        self._a_batch_done.set()
        while self._inflight and self._inflight[0].done.is_set():
            head = self._inflight.popleft()
            self.inflight_records -= head.records
            if head.failed or self.blocked:
                self.blocked = True  # never commit past a failed batch: it is redelivered
                continue
            if head.generation != self.generation:
                continue  # fetched under an assignment that is gone: its offsets are moot
            if head.abandoned or self._abandoned_in == self.generation:
                self._abandoned_in = self.generation  # until the next assignment
                continue
            for tp, end in head.ends.items():
                if tp in self._assigned and end > self._committable.get(tp, -1):
                    self._committable[tp] = end

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def open_batches(self) -> int:
        """Batches in flight not yet done (``inflight`` also counts done ones waiting for an
        earlier batch, e.g. behind a routine lane's record still queued)."""
        return sum(1 for b in self._inflight if not b.done.is_set())

    async def wait_for_a_batch(self, within_s: float) -> None:
        """Return when a batch in flight is done (any: the caller checks again what it
        needs), or ``within_s`` has passed.  One event, not a wait per batch: cheap."""
        self._a_batch_done.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._a_batch_done.wait(), within_s)

    async def drain(self, within_s: float) -> bool:
        """Wait until every batch in flight is done; False if ``within_s`` passed first."""
        pending = [b.done.wait() for b in self._inflight if not b.done.is_set()]
        if not pending:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*pending), within_s)
        except TimeoutError:
            return False
        return True

    # -- commits --------------------------------------------------------------------------

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit now: those that moved since the last ``committed`` call."""
        return {tp: o for tp, o in self._committable.items() if self._committed.get(tp) != o}

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        now = self._clock()
        for tp, offset in offsets.items():
            if self._committed.get(tp) != offset:
                self._moved_at[tp] = now
        self._committed.update(offsets)

    def committed_offset(self, tp: TopicPartition) -> int | None:
        """The offset this worker last committed for ``tp`` in this assignment."""
        return self._committed.get(tp)

    def unmoved_for(self, tp: TopicPartition) -> float:
        """Seconds since ``tp``'s committed offset last moved (or it was assigned)."""
        return self._clock() - self._moved_at.get(tp, self._clock())

    def snapshot(self) -> dict[str, object]:
        """For diagnostics: what is in flight and what would be committed."""
        return {
            "generation": self.generation,
            "assigned": sorted(f"{t}/{p}" for t, p in self._assigned),
            "inflight_batches": len(self._inflight),
            "blocked": self.blocked,
            "committable": {f"{t}/{p}": o for (t, p), o in sorted(self._committable.items())},
        }
