"""Commit only offsets whose records every stage of this worker has processed.

faust's own bookkeeping can commit past records nobody processed, which loses them for good
(measured here as intents stuck after a consumer-group rebalance, about 1 run in 4):

1. **Skipped records are acked.**  While a rebalance is under way (flow control suspended, or
   a record fetched under the previous generation) a stream *skips* the record and acks it
   as if it had been processed.  The record it skipped sits in the partition's acked list,
   and the next commit moves past it.
2. **A record read by two stages is acked by whichever finishes last.**  A message delivered
   to two agents (validate and project both read ``sep.intents.ingested``) is acked when its
   reference count reaches zero, so one agent skipping it and the other processing it still
   counts as "processed".
3. **The gap check is off by one and off at zero.**  ``Consumer._new_offset`` lets the
   acked run start one past the committed offset (so one missing record is committed over),
   and skips the check entirely when the committed offset is 0 or unknown.

``SafeOffsetsConsumer`` replaces those three rules: a record's offset is recorded only when
every stage subscribed to its topic has marked it processed *and* it was fetched in the
current generation; and the committable run must start exactly at the partition's committed
offset (or its first offset, for a partition never committed).  Anything else is released
(so a graceful shutdown does not wait for it) but not recorded: it is fetched again after
the next seek and processed again, which our idempotent stages make harmless.  When no seek
follows (measured: the first record of a partition after a restart's rebalance, now and then),
``refetch_dropped`` notices the hole and seeks back to it.

One more way to lose records shows nothing processed at all: faust's ``getmany`` throws away
fetched records of a partition it does not consider active yet (or when the generation changes
mid-batch), after aiokafka has already moved the fetch position past them.  Measured once:
a worker's first 30 and 40 records of two input partitions fetched and never delivered, no
stage batch ever run for them, and nothing processed above the base for the first rule to
notice.  So ``refetch_dropped`` also compares each partition's fetch position with the last
offset a stage was handed (``note_delivered``): a position ahead of it that stays put while
every stage's queue is empty means records were dropped between fetch and stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from pipeline.runtime import diagnostics  # the stages' pumps register their queues there


class SafeOffsetsConsumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    """faust's aiokafka consumer with ack and commit rules that cannot skip a record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._processed: WeakKeyDictionary[Message, int] = WeakKeyDictionary()
        self._base: dict[TP, int] = {}
        """tp -> the next offset that must be acked before the committed offset can move."""
        self._suspect: dict[TP, int] = {}
        self._delivered: dict[TP, int] = {}
        """tp -> the highest offset handed to a stage in this generation."""
        self._undelivered_suspect: dict[TP, tuple[int, int]] = {}
        self.refetches = 0
        """How many times a dropped record was fetched again (see ``refetch_dropped``)."""

    def note_delivered(self, message: Message) -> None:
        """A stage's stream has handed ``message`` to the stage (not yet processed)."""
        if message.offset > self._delivered.get(message.tp, -1):
            self._delivered[message.tp] = message.offset

    def mark_processed(self, message: Message) -> None:
        """A stage has processed ``message`` and delivered what it emitted."""
        with ack_lock:
            self._processed[message] = self._processed.get(message, 0) + 1

    def _fully_processed(self, message: Message) -> bool:
        subscribers: Mapping[str, int] = getattr(self.app, "stage_subscribers", {})
        wanted = subscribers.get(message.topic, 1)
        return (
            self._processed.get(message, 0) >= wanted
            and message.generation_id == self.app.consumer_generation_id
        )

    def ack(self, message: Message) -> bool:
        if not self.app.topics.acks_enabled_for(message.topic) or self._fully_processed(message):
            return bool(super().ack(message))
        # Skipped, partly processed, or from an earlier generation: let go of it (so
        # wait_empty does not wait for it) without recording its offset as committable.
        with ack_lock:
            if not message.acked:
                message.acked = True
                self._unacked_messages.discard(message)
                notify(self._waiting_for_ack)
        return False

    async def perform_seek(self) -> None:
        await super().perform_seek()
        committed = {tp: offset for tp, offset in self._committed_offset.items() if offset}
        unknown = [tp for tp in self.assignment() if tp not in committed]
        # Never committed (or committed at 0): the fetch starts at the partition's first
        # offset, so that is where the acked run has to start.
        earliest = await self.earliest_offsets(*unknown) if unknown else {}
        self._base = {tp: int(committed.get(tp, earliest.get(tp, 0))) for tp in self.assignment()}
        self._suspect.clear()
        self._delivered.clear()
        self._undelivered_suspect.clear()

    async def refetch_dropped(self) -> list[tuple[TP, int]]:
        """Seek back to a record that was dropped without being processed; call every second.

        A partition's records reach each stage, are processed and are acked in offset order,
        so once an offset *above* the commit base is recorded as processed, the record at the
        base was dropped on the way (skipped by faust around a rebalance) rather than still
        being worked on.  Nothing would ever fetch it again before the next rebalance: the
        intent would sit there.  Seeing that twice in a row (one call apart, to let a final
        ack that is just being recorded land), seek back to the base; records after it are
        processed again, which the idempotent stages make harmless.
        """
        healed = dropped_records(self._base, self._acked, self.assignment(), self._suspect)
        if stages_idle():
            healed += undelivered_records(self._fetch_positions(), self._delivered, self._base,
                                          self._undelivered_suspect)
        else:
            self._undelivered_suspect.clear()
        for tp, base in healed:
            await self.seek(tp, base)
            self.refetches += 1
        return healed

    def _fetch_positions(self) -> dict[TP, int]:
        """aiokafka's fetch position of every active partition a stage of ours reads."""
        subscribed: Mapping[str, int] = getattr(self.app, "stage_subscribers", {})
        active = getattr(self, "_active_partitions", None) or set()
        return {
            TP(tp.topic, tp.partition): position
            for tp, position in diagnostics.fetch_positions(self).items()
            if position is not None and tp.topic in subscribed and tp in active
        }

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._base.pop(tp, None)
            self._suspect.pop(tp, None)
            self._delivered.pop(tp, None)
            self._undelivered_suspect.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        base = self._base.get(tp)
        if base is None:
            return None  # not yet seeked in this generation: nothing is safe to commit
        acked = self._acked[tp]
        done, end = committable_run(acked, base)
        self._acked_index[tp].difference_update(done)
        if end is None:
            return None
        self._base[tp] = end
        return end


def dropped_records(
    base: Mapping[TP, int],
    acked: Mapping[TP, list[int]],
    assigned: set[TP],
    suspect: dict[TP, int],
) -> list[tuple[TP, int]]:
    """Partitions whose base record was dropped, seen twice in a row: ``(tp, base)`` to seek to.

    ``suspect`` carries what the previous call saw (updated in place).
    """
    found: list[tuple[TP, int]] = []
    for tp, offset in base.items():
        processed = acked.get(tp)
        if tp not in assigned or not processed or min(processed) <= offset:
            suspect.pop(tp, None)
        elif suspect.get(tp) != offset:
            suspect[tp] = offset
        else:
            del suspect[tp]
            found.append((tp, offset))
    return found


def undelivered_records(
    positions: Mapping[TP, int],
    delivered: Mapping[TP, int],
    base: Mapping[TP, int],
    suspect: dict[TP, tuple[int, int]],
) -> list[tuple[TP, int]]:
    """Partitions whose fetch position ran ahead of what reached a stage, seen twice in a row.

    The next offset a stage should get is one past the last one it was handed, or the commit
    base if none was handed yet.  A fetch position beyond that, unchanged since the previous
    call (made while every stage's queue was empty), means fetched records were dropped before
    any stage saw them: ``(tp, next expected offset)`` to seek to.  ``suspect`` carries what
    the previous call saw (updated in place).
    """
    found: list[tuple[TP, int]] = []
    for tp, position in positions.items():
        last = delivered.get(tp)
        expected = last + 1 if last is not None else base.get(tp)
        if expected is None or position <= expected:
            suspect.pop(tp, None)
            continue
        seen = (position, expected)
        if suspect.get(tp) != seen:
            suspect[tp] = seen
        else:
            del suspect[tp]
            found.append((tp, expected))
    return found


QueueSize = Callable[[], int]


def stages_idle(pumps: Mapping[str, QueueSize] | None = None) -> bool:
    """Whether every stage's pump queue is empty (nothing fetched is waiting for a stage)."""
    sizes = diagnostics.PUMP_DEPTH if pumps is None else pumps
    return all(size() == 0 for size in sizes.values())


def committable_run(acked: list[int], base: int) -> tuple[list[int], int | None]:
    """Take the offsets that can be forgotten out of ``acked``; return them and the new commit.

    ``acked`` (modified in place, left sorted) holds processed offsets; ``base`` is the next
    offset that must be processed.  Offsets below ``base`` are stale and dropped.  The new
    committed offset is one past the unbroken run starting exactly at ``base``, or ``None``
    when ``base`` itself is not processed yet.
    """
    acked.sort()
    cut = 0
    while cut < len(acked) and acked[cut] < base:
        cut += 1
    end = base
    while cut < len(acked) and acked[cut] == end:
        cut += 1
        end += 1
    done = acked[:cut]
    del acked[:cut]
    return done, (end if end > base else None)


def install() -> None:
    """Make faust's Kafka transport build ``SafeOffsetsConsumer``s (idempotent)."""
    faust_aiokafka.Transport.Consumer = SafeOffsetsConsumer
