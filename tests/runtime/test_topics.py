"""The topics created before any worker starts include the changelogs the runtime uses."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.runtime.delivery.sourced import SourcedTable
from pipeline.runtime.delivery.tables import ChangelogTable
from pipeline.runtime.topics import declared_topics
from pipeline.runtime.worker import build_runtime
from pipeline.topology import load_topology

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
