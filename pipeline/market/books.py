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

import logging
import time
from collections.abc import Callable, Collection, Sequence
from types import ModuleType

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter, ValidationError

from pipeline import ops
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.market.follower import TopicFollower
from pipeline.market.replica import Applied
from pipeline.models.market import BookDelta, BookMessage, BookSnapshot

log = logging.getLogger(__name__)

TOPIC = "sep.market.books"
LOOKBACK_MS = 60_000
"""How far back a starting feed reads: several snapshot intervals of any venue."""

_MESSAGE: TypeAdapter[BookSnapshot | BookDelta] = TypeAdapter(BookMessage)


class BookFeed(TopicFollower):
    """Follows ``sep.market.books``; ``book(base, quote)`` is the pair's aggregated book."""

    TASK_NAME = "book-feed"

    def __init__(
        self,
        bootstrap: str,
        decimals: Callable[[str], int | None],
        topic: str = TOPIC,
        *,
        partitions: int | None = None,
        lookback_ms: int = LOOKBACK_MS,
        ops_module: ModuleType = ops,
        venues: Collection[str] | None = None,
    ) -> None:
        super().__init__(bootstrap, topic, partitions=partitions)
        self._lookback_ms = lookback_ms
        self._venues = None if venues is None else frozenset(venues)
        """Only these venues' books (a planner: the venues it can execute on, so a book some
        other deployment publishes on the topic never becomes a child order it cannot place);
        ``None``: every venue's (the UI's depth view)."""
        self.board = BookBoard(decimals, ops_module)

    async def start_offsets(
        self, consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """``lookback_ms`` back (or the end, if nothing is that recent)."""
        since = int(time.time() * 1000) - self._lookback_ms
        found = await consumer.offsets_for_times({tp: since for tp in tps})
        ends = await consumer.end_offsets(tps)
        return {tp: at.offset if (at := found.get(tp)) is not None else ends[tp] for tp in tps}

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        return self.board.book(base, quote)

    def apply(self, value: bytes) -> bool:
        try:
            message = _MESSAGE.validate_json(value)
        except ValidationError as exc:
            log.warning("unreadable book message skipped", extra={"error": str(exc)[:500]})
            return False
        if self._venues is not None and message.venue not in self._venues:
            return False
        applied = self.board.apply(message) is Applied.APPLIED
        self.updates += applied
        return applied
