"""Rebuild every read model from the event store, into a fresh namespace; compare or swap.

rebuild   scan the events (by id, in batches) into ``{live}replay-<ms>:``, without
          change-stream entries; positions once at the end
verify    dump both namespaces and list every difference; the fresh one is dropped
swap      atomically rename the fresh keys over the live ones (the change stream and the
          metrics stay), then catch up on events stored since the rebuild began: the
          project stage may have written them into the old keys during the rebuild
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from pipeline.config import Settings
from pipeline.store import namespace
from pipeline.store.eventstore import EventStore, to_event
from pipeline.store.readmodel import ReadModel
from pipeline.topology.models import Topology

# stored_at comes from the inserting transaction's start; a batch that began just before the
# rebuild's first read may commit after it, so the catch-up looks back a little further.
CATCH_UP_MARGIN = timedelta(seconds=30)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Rebuilt:
    prefix: str
    events: int
    seconds: float
    started_at: datetime
    """The store's clock when the scan began."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _model(settings: Settings, topology: Topology, prefix: str) -> ReadModel:
    risk = topology.risk
    return ReadModel.connect(
        settings.redis,
        prefix,
        quote_asset=risk.quote_asset,
        reference_prices=dict(risk.reference_prices),
        change_stream=False,
    )


async def rebuild(
    settings: Settings, topology: Topology, *, batch: int = 5000, progress: Progress | None = None
) -> Rebuilt:
    fresh = f"{settings.redis_prefix}replay-{time.time_ns() // 1_000_000}:"
    store = await EventStore.connect(settings.postgres)
    model = _model(settings, topology, fresh)
    try:
        total = await store.count()
        started_at = await store.now()
        started = time.monotonic()
        done = 0
        async for stored in store.scan(batch):
            await model.apply([to_event(e) for e in stored], positions="later")
            done += len(stored)
            if progress:
                progress(done, total)
        await model.refresh_positions(model.touched)
        return Rebuilt(fresh, done, time.monotonic() - started, started_at)
    finally:
        await store.close()
        await model.close()


async def verify(settings: Settings, rebuilt: Rebuilt) -> list[namespace.Difference]:
    raw = aioredis.from_url(settings.redis)
    try:
        live = await namespace.dump(raw, settings.redis_prefix)
        fresh = await namespace.dump(raw, rebuilt.prefix)
        return namespace.diff(live, fresh)
    finally:
        await raw.aclose()


async def drop(settings: Settings, rebuilt: Rebuilt) -> None:
    raw = aioredis.from_url(settings.redis)
    try:
        await namespace.drop(raw, rebuilt.prefix)
    finally:
        await raw.aclose()


async def swap(settings: Settings, topology: Topology, rebuilt: Rebuilt) -> tuple[int, int]:
    """Make the rebuilt models live; return (keys moved, events caught up on)."""
    raw = aioredis.from_url(settings.redis)
    try:
        moved = await namespace.swap(raw, rebuilt.prefix, settings.redis_prefix)
    finally:
        await raw.aclose()
    store = await EventStore.connect(settings.postgres)
    model = _model(settings, topology, settings.redis_prefix)
    try:
        since = rebuilt.started_at - CATCH_UP_MARGIN
        caught_up = 0
        async for stored in store.scan(stored_since=since):
            caught_up += await model.apply([to_event(e) for e in stored])
        return moved, caught_up
    finally:
        await store.close()
        await model.close()
