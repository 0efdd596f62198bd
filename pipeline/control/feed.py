"""Every worker's copy of the control plane: ``sep.control`` read from the beginning, then
followed (a change is in force in every worker within the fetch wait, well under a second).

The topic is compacted, so reading it whole is reading the latest change per key (plus
whatever the cleaner has not removed yet, which ``ControlState`` orders by seq).  A record
that does not decode is logged and skipped: a bad control record must not stop the good ones
from being obeyed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from pipeline.codec import decode_event
from pipeline.control.keys import TOPIC
from pipeline.control.state import ControlState
from pipeline.market.follower import TopicFollower

log = logging.getLogger(__name__)


class ControlFeed(TopicFollower):
    """Follows ``sep.control``; ``state`` is what it has read."""

    TASK_NAME = "control-feed"

    def __init__(self, bootstrap: str, topic: str = TOPIC, *, partitions: int | None = 1) -> None:
        super().__init__(bootstrap, topic, partitions=partitions)
        self.state = ControlState()

    async def start_offsets(
        self, consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The beginning: the compacted topic is the latest change per key."""
        return dict(await consumer.beginning_offsets(tps))

    def apply(self, value: bytes) -> bool:
        try:
            event = decode_event(value)
        except (ValidationError, ValueError) as exc:
            log.warning("unreadable control record skipped", extra={"error": str(exc)[:500]})
            return False
        applied = self.state.apply(event)
        if applied:
            self.updates += 1
            log.info(
                "control change",
                extra={"key": event.correlation_id, "type": event.topic, "seq": event.seq},
            )
        return applied
