"""The topics created before any worker starts include the changelogs the runtime uses;
with lanes on, a worker refuses lane topics that are missing or of another partition count."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.config import Settings
from pipeline.runtime.delivery.sourced import SourcedTable
from pipeline.runtime.delivery.tables import ChangelogTable
from pipeline.runtime.topics import (
    LaneTopicsError,
    TopicMismatch,
    check_lane_topics,
    declared_topics,
    ensure_topics,
    lane_topics,
)
from pipeline.runtime.worker import build_runtime, run_worker
from pipeline.topology import Topology, load_topology
from pipeline.topology.loader import parse_topology
from tests.lanes_support import lanes_on_yaml

TOPOLOGY = load_topology()


def test_every_table_changelog_a_worker_uses_is_declared_with_its_partitions(
    tmp_path: Path,
) -> None:
    for decisions_from, changelog_count in (("changelog", 4), ("events", 1)):
        runtime, _ = build_runtime(
            TOPOLOGY, Settings(data_dir=tmp_path, decisions_from=decisions_from)
        )
        declared = {t.name: t for t in declared_topics(TOPOLOGY)}
        tables = runtime.tables.tables
        changelogs = {t.topic: n for t, _, n in tables if isinstance(t, ChangelogTable)}
        # validate's, prioritise's and plan's decisions, execute's openings (ingest dedupes in
        # a store; the strategy runner's tables are its own worker's); from their events, the
        # first three read their stages' events topics back instead
        assert len(changelogs) == changelog_count
        for name, partitions in changelogs.items():
            assert name in declared, name
            assert declared[name].partitions == partitions
            assert declared[name].configs == {"cleanup.policy": "compact"}
        for table, _, partitions in tables:
            if isinstance(table, SourcedTable):
                assert declared[table.topic].partitions == partitions


def test_the_topology_topics_keep_their_retention() -> None:
    declared = {t.name: t for t in declared_topics(TOPOLOGY)}
    for topic in TOPOLOGY.topics:
        assert declared[topic.name].partitions == topic.partitions
        assert declared[topic.name].configs["retention.ms"] == str(topic.retention_ms)


def renamed_lanes_on(run: str) -> Topology:
    """topology.yaml with lanes on and every ``sep.intents.*`` topic renamed for this run
    (the broker is shared by the test session)."""
    return parse_topology(lanes_on_yaml().replace("sep.intents.", f"t{run}.intents."))


async def test_with_lanes_a_worker_refuses_lane_topics_missing_or_of_another_count(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    topology = renamed_lanes_on(run)
    names = lane_topics(topology)
    assert len(names) == 6  # three lanes in front of the chain, three in front of ingest
    with pytest.raises(LaneTopicsError) as missing:
        await check_lane_topics(kafka_bootstrap, topology)
    assert len(missing.value.problems) == 6
    assert f"t{run}.intents.submitted.fast does not exist" in str(missing.value)
    # A producer wrote the fast input lane before it was created: the broker's auto-create
    # gave it one partition.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"t{run}.intents.submitted.fast", 1, 1)])
    finally:
        await admin.close()
    with pytest.raises(TopicMismatch):
        await ensure_topics(kafka_bootstrap, topology)  # creates the others, refuses it
    with pytest.raises(LaneTopicsError) as wrong:
        await check_lane_topics(kafka_bootstrap, topology)
    assert wrong.value.problems == [f"t{run}.intents.submitted.fast has 1 partitions, declared 8"]
    assert "delete it and create it again" in str(wrong.value)


async def test_lane_topics_as_declared_pass_and_no_lanes_checks_nothing(
    kafka_bootstrap: str,
) -> None:
    topology = renamed_lanes_on(uuid.uuid4().hex[:8])
    await ensure_topics(kafka_bootstrap, topology)
    await check_lane_topics(kafka_bootstrap, topology)
    assert lane_topics(TOPOLOGY) == []  # lanes off by default
    await check_lane_topics("127.0.0.1:1", TOPOLOGY)  # not even a connection


def test_a_worker_with_lanes_on_exits_with_the_reason_before_it_starts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topology = renamed_lanes_on(uuid.uuid4().hex[:8])
    with pytest.raises(SystemExit) as exited:
        run_worker(topology, Settings(kafka=kafka_bootstrap, data_dir=tmp_path))
    assert "refusing to start" in str(exited.value.code)
    assert "does not exist" in str(exited.value.code)
