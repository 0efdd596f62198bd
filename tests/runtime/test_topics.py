"""The topics created before any worker starts include the changelogs the runtime uses."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.runtime.topics import declared_topics
from pipeline.runtime.worker import build_runtime
from pipeline.topology import load_topology

TOPOLOGY = load_topology()


def test_every_table_changelog_a_worker_uses_is_declared_with_its_partitions(
    tmp_path: Path,
) -> None:
    runtime, _ = build_runtime(TOPOLOGY, Settings(data_dir=tmp_path))
    declared = {t.name: t for t in declared_topics(TOPOLOGY)}
    changelogs = {table.topic: partitions for table, _, partitions in runtime.tables.tables}
    # validate's, prioritise's and plan's decisions, execute's openings (ingest dedupes in
    # a store; the strategy runner's tables are its own worker's)
    assert len(changelogs) == 4
    for name, partitions in changelogs.items():
        assert name in declared, name
        assert declared[name].partitions == partitions
        assert declared[name].configs == {"cleanup.policy": "compact"}


def test_the_topology_topics_keep_their_retention() -> None:
    declared = {t.name: t for t in declared_topics(TOPOLOGY)}
    for topic in TOPOLOGY.topics:
        assert declared[topic.name].partitions == topic.partitions
        assert declared[topic.name].configs["retention.ms"] == str(topic.retention_ms)
