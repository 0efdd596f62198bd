"""A worker pool running a test's own topology with the strategy runner placed: what the
strategy e2e modules share (their topologies differ, the start-up does not)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import yaml

from pipeline.config import Settings
from pipeline.harness import WorkerPool, skip_backlog
from pipeline.runtime.app import group_id
from pipeline.runtime.topics import ensure_topics
from pipeline.store.eventstore import EventStore
from pipeline.topology import Topology


@contextlib.contextmanager
def strategy_workers(
    settings: Settings, topology: Topology, directory: Path, name: str
) -> Iterator[WorkerPool]:
    """One full worker and the strategy runner on ``topology`` (written to ``directory``),
    their consumer groups started past what earlier tests left on the shared broker."""
    path = directory / "topology.yaml"
    path.write_text(yaml.safe_dump(topology.model_dump(by_alias=True, mode="json")))

    async def prepare() -> None:
        await ensure_topics(settings.kafka, topology)
        partitions = {t.name: t.partitions for t in topology.topics}
        for group in (group_id(topology), group_id(topology, ["strategy_runner"])):
            await skip_backlog(settings.kafka, group, partitions)
        store = await EventStore.connect(settings.postgres)
        await store.close()

    asyncio.run(prepare())
    workers = WorkerPool(
        settings,
        count=1,
        singletons=topology.singleton_stages,
        extra_env={"SEP_TOPOLOGY": str(path)},
        name=name,
    )
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()
