"""Topics on the test broker, for tests that need one of their own."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

COMPACTED = {"cleanup.policy": "compact"}


async def create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        await admin.close()


async def new_topic(
    bootstrap: str, prefix: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> str:
    """Create ``<prefix>.<random>`` with ``partitions`` partitions; its name."""
    name = f"{prefix}.{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, name, partitions, configs)
    return name
