"""Create the topology's topics up front, with their partitions and retention.

faust only creates its own internal topics; ours must exist with the declared partition
counts before any worker starts, or the broker's defaults win and co-partitioning breaks.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.topology.models import Topology

log = logging.getLogger(__name__)


class TopicMismatch(Exception):
    """An existing topic's partition count differs from the topology."""


async def ensure_topics(bootstrap: str, topology: Topology) -> list[str]:
    """Create missing topics; verify existing ones.  Returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topology.topics if t.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        t.name, t.partitions, 1, topic_configs={"retention.ms": str(t.retention_ms)}
                    )
                    for t in missing
                ]
            )
        present = [t for t in topology.topics if t.name in existing]
        if present:
            described = await admin.describe_topics([t.name for t in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            wrong = [
                f"{t.name}: has {counts.get(t.name)}, topology says {t.partitions}"
                for t in present
                if counts.get(t.name) != t.partitions
            ]
            if wrong:
                raise TopicMismatch("topic partition counts differ: " + "; ".join(wrong))
        for topic in missing:
            log.info("created topic", extra={"topic": topic.name, "partitions": topic.partitions})
        return [t.name for t in missing]
    finally:
        await admin.close()
