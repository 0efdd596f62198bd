"""Create the topology's topics up front, with their partitions and retention.

Ours must exist with the declared partition counts before any worker starts, or the
broker's defaults win and co-partitioning breaks.  The stages' table changelogs are created
here too (see stages.table_names).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline import limits
from pipeline.runtime.app import group_id
from pipeline.stages.table_names import STAGE_TABLES, changelog_topic
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)


LEADER_WAIT_S = 30.0


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Return once every partition of ``names`` has a leader.

    Right after creation the broker still elects leaders; producing then fails with
    NotLeaderForPartition (retried, but noisy and slow), so we wait here instead.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEADER_WAIT_S
    while True:
        described = await admin.describe_topics(names)
        pending = [
            d["topic"]
            for d in described
            if d.get("error_code")
            or not d["partitions"]
            or any(p["leader"] < 0 for p in d["partitions"])
        ]
        if not pending:
            return
        if loop.time() > deadline:
            raise TimeoutError(
                f"topics without partition leaders after {LEADER_WAIT_S:.0f}s: {pending}"
            )
        await asyncio.sleep(0.1)


class TopicMismatch(Exception):
    """An existing topic's partition count differs from the topology."""


class LaneTopicsError(Exception):
    """With lanes on, a lane topic is missing or has another partition count than the
    topology declares: a worker refuses to start (see ``check_lane_topics``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "priority lanes are on, but their topics are not as topology.yaml declares them: "
            + "; ".join(problems)
            + ".  Create the topics with their declared partition counts before starting "
            "workers (`sep up` does; so does pipeline.runtime.topics.ensure_topics); a topic "
            "the broker created on first use has the broker's default count: delete it and "
            "create it again (and set auto.create.topics.enable=false on the broker)."
        )


def lane_topics(topology: Topology) -> list[str]:
    """Every lane topic of the topology (both splits); none without lanes."""
    lanes = topology.lanes
    return [] if lanes is None else [*lanes.topics, *lanes.submit_topics]


async def check_lane_topics(bootstrap: str, topology: Topology) -> None:
    """Raise ``LaneTopicsError`` unless every lane topic exists with its declared partitions.

    Why a worker checks: the lane topics are keyed like the topic they split and must be
    co-partitioned with it.  One a producer wrote before it was created (the broker's
    auto-create) has the broker's default partition count; a worker then reads partitions
    the others do not have, or misses those they do, and intents are lost or never decided.
    ``ensure_topics`` refuses such a topic too, but workers do not run it."""
    names = lane_topics(topology)
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [n for n in names if n in existing]
        described = await admin.describe_topics(present) if present else []
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    problems = []
    for name in names:
        declared = topology.topic(name).partitions
        if name not in existing:
            problems.append(f"{name} does not exist (declared with {declared} partitions)")
        elif counts.get(name) != declared:
            problems.append(f"{name} has {counts.get(name)} partitions, declared {declared}")
    if problems:
        raise LaneTopicsError(problems)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str]


def declared_topics(topology: Topology) -> list[TopicSpec]:
    """The topology's topics, then the changelogs of the tables its stages keep (in the
    group of a worker running every stage; faust creates those of other layouts itself)."""
    specs = [
        TopicSpec(
            t.name,
            t.partitions,
            {
                "retention.ms": str(t.retention_ms),
                "cleanup.policy": t.cleanup_policy,
                # pipeline/limits.py: every topic accepts what the broker accepts.
                "max.message.bytes": str(limits.BROKER_MAX_MESSAGE_BYTES),
                # The producer's timestamp is part of an intent's identity (ingest derives the
                # id from it, POST /intents predicts it): LogAppendTime would change it.
                "message.timestamp.type": "CreateTime",
            },
        )
        for t in topology.topics
    ]
    partitions = {t.name: t.partitions for t in topology.topics}
    for stage in topology.stages:
        # A singleton stage's worker has a consumer group, and so changelogs, of its own.
        group = group_id(topology, [stage.name]) if stage.singleton else topology.app.id
        for table in STAGE_TABLES.get(stage.name, ()):
            # A table has as many partitions as its stage's input (see runtime.worker).
            specs.append(
                TopicSpec(
                    changelog_topic(group, table),
                    partitions[stage.inputs[0]],
                    {"cleanup.policy": "compact"},
                )
            )
    return specs


async def ensure_topics(bootstrap: str, topology: Topology) -> list[str]:
    """Create missing topics; verify existing ones.  Returns the names created."""
    return await ensure_specs(bootstrap, declared_topics(topology))


async def ensure_specs(bootstrap: str, specs: list[TopicSpec]) -> list[str]:
    """Create the missing ones of ``specs``; verify the partition counts of the others.

    A worker calls it for its own tables' changelogs too: a process layout (a worker running
    a subset of the stages) has a consumer group, and changelogs, of its own.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in specs if t.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t.name, t.partitions, 1, topic_configs=t.configs) for t in missing]
            )
        present = [t for t in specs if t.name in existing]
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
        if missing:
            await _wait_for_leaders(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()
