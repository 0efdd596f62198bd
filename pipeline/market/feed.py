"""The latest state of every pool, read from ``sep.market.pools`` by every planner.

Market data is broadcast, not shared out: each worker's plan stage needs *every* pool, while
a consumer group would hand each worker only some partitions.  So the feed is a plain
consumer with no group, assigned every partition, reading from the beginning (the topic is
compacted: the latest record per pool survives) and then following the tail.

Records are keyed ``venue/pool_id`` and hold a ``PoolState`` as JSON.  A record that does
not parse is logged and skipped: one venue publishing garbage must not blind the planner to
the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from pipeline.market.follower import TopicFollower
from pipeline.market.snapshots import PoolSnapshots
from pipeline.models.market import PoolState

log = logging.getLogger(__name__)

TOPIC = "sep.market.pools"


def pool_key(state: PoolState) -> bytes:
    return f"{state.venue}/{state.pool_id}".encode()


def pool_value(state: PoolState) -> bytes:
    return state.model_dump_json(by_alias=True, exclude_none=True).encode()


class PoolFeed(TopicFollower):
    """Follows ``sep.market.pools``; ``pools()`` is the latest state per venue and pool."""

    TASK_NAME = "pool-feed"

    def __init__(self, bootstrap: str, topic: str = TOPIC) -> None:
        super().__init__(bootstrap, topic)
        self._snapshots = PoolSnapshots()
        self._marked: dict[str, dict[str, tuple[PoolState, int]]] = {}
        """venue -> pool id -> its latest state and that record's offset (the paper mirror's
        marks: one pool's records are in one partition, so its offsets only grow)."""

    async def start_offsets(
        self, consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """From the beginning: the topic is compacted, the latest state per pool survives."""
        return dict(await consumer.beginning_offsets(tps))

    def pools(self) -> Mapping[str, list[PoolState]]:
        """The latest state of every pool, by venue, sorted by pool id.  A venue's list is
        never modified once handed out, and is handed out again while the venue has nothing
        new (see ``pipeline.market.snapshots``)."""
        return self._snapshots.pools()

    def apply(self, value: bytes) -> bool:
        try:
            state = PoolState.model_validate_json(value)
        except ValidationError as exc:
            log.warning("unreadable pool state skipped", extra={"error": str(exc)[:500]})
            return False
        self._snapshots.put(state)
        self._marked.setdefault(state.venue, {})[state.pool_id] = (state, self.offset)
        self.updates += 1
        return True

    def marked(self, venue: str) -> list[tuple[PoolState, int]]:
        """The latest state of each of ``venue``'s pools with its record's offset."""
        return list(self._marked.get(venue, {}).values())
