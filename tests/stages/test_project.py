"""Project on real PostgreSQL and Redis: stored, then projected; redelivery is harmless."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from pipeline.codec import encode_event
from pipeline.config import Settings
from pipeline.stages.base import Output, Record, StageContext
from pipeline.stages.project import build
from pipeline.store.eventstore import EventStore
from pipeline.store.views import Views
from tests.store.lifecycle import TOPOLOGY, lifecycle, sim_venue


async def test_batch_is_stored_projected_and_measured(
    postgres_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"proj-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        postgres=postgres_dsn, redis=redis_url, redis_prefix=prefix, data_dir=tmp_path
    )
    stage = build(StageContext(TOPOLOGY, settings))
    async with sim_venue(tmp_path) as sim:
        events = await lifecycle(sim, 70, at_ms=1_650_000_000_000, strategy=prefix)
    records = [
        Record("sep.executions", 0, i, 0, None, encode_event(e)) for i, e in enumerate(events)
    ]

    async def emit(output: Output) -> None:
        raise AssertionError("project emits nothing")

    await stage.start()
    try:
        await stage.process(records, emit)
        await stage.process(records, emit)  # redelivered after a crash
        assert stage.stored == 9
        store = await EventStore.connect(postgres_dsn)
        try:
            assert len(await store.events_of(events[0].correlation_id)) == 9
        finally:
            await store.close()
        assert stage._read_model is not None
        redis = stage._read_model.redis
        doc = await Views(redis, prefix).intent(events[0].correlation_id)
        assert doc is not None
        assert (doc["state"], doc["eventCount"]) == ("completed", 9)
        lag = await redis.hgetall(f"{prefix}metrics:lag:execute")
        assert lag["count"] == "8"  # 4 execute events, twice: metrics count deliveries
        duration = await redis.hgetall(f"{prefix}metrics:duration:completed")
        assert duration["count"] == "2"
    finally:
        await stage.stop()


async def test_a_batch_postgresql_refuses_reaches_neither_read_model_nor_change_stream(
    postgres_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    """Stored first, then projected: what the UI sees is always in the store.  A record
    PostgreSQL refuses is dead-lettered (``retry_forever``), never redelivered, so had Redis
    been written first (or alongside) the live view would hold a fact the store never gets."""
    prefix = f"proj-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        postgres=postgres_dsn, redis=redis_url, redis_prefix=prefix, data_dir=tmp_path
    )
    stage = build(StageContext(TOPOLOGY, settings))
    async with sim_venue(tmp_path) as sim:
        events = await lifecycle(sim, 71, at_ms=1_650_000_100_000, strategy=prefix)
    # A seq past int4: a valid event PostgreSQL refuses (a DataError: not retried forever).
    poisoned = events[0].model_copy(update={"seq": 2**31})
    records = [
        Record("sep.executions", 0, i, 0, None, encode_event(e))
        for i, e in enumerate([poisoned, *events[1:]])
    ]

    async def emit(output: Output) -> None:
        raise AssertionError("project emits nothing")

    await stage.start()
    try:
        with pytest.raises(asyncpg.DataError):
            await stage.process(records, emit)
        assert not stage.retry_forever(asyncpg.DataError("x"))
        assert stage._read_model is not None
        redis = stage._read_model.redis
        assert await redis.xlen(f"{prefix}changes") == 0
        assert await Views(redis, prefix).intent(events[0].correlation_id) is None
    finally:
        await stage.stop()
