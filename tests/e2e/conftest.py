"""The real pipeline for end-to-end tests: worker processes against the session's services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from pipeline.config import Settings
from pipeline.harness import WorkerPool
from pipeline.runtime.topics import ensure_topics
from pipeline.store.eventstore import EventStore
from pipeline.topology import load_topology

if TYPE_CHECKING:
    from pipeline.devstack import DevStack
    from pipeline.devstack.uniswap import DevChain


@pytest.fixture(scope="module")
def settings(
    services: DevStack, chain: DevChain, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    data_dir = tmp_path_factory.mktemp("pipeline")
    return Settings(
        kafka=services.kafka_bootstrap,
        postgres=services.postgres_dsn,
        redis=services.redis_url,
        data_dir=Path(data_dir),
        rpc=chain.rpc_url,
        deployment=chain.deployment_path,
    )


@pytest.fixture(scope="module")
async def prepared(settings: Settings) -> Settings:
    await ensure_topics(settings.kafka, load_topology())
    store = await EventStore.connect(settings.postgres)
    await store.close()
    return settings


@pytest.fixture(scope="module")
def workers(prepared: Settings) -> Iterator[WorkerPool]:
    pool = WorkerPool(prepared, count=2)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
async def db(prepared: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(prepared.postgres)
    try:
        yield conn
    finally:
        await conn.close()
