"""Writing to the stores the way the project stage does, without running the pipeline."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.models.events import Event
from pipeline.store.eventstore import EventStore
from pipeline.store.readmodel import ReadModel
from tests.store.lifecycle import TOPOLOGY


async def store_and_project(settings: Settings, events: list[Event]) -> None:
    store = await EventStore.connect(settings.postgres)
    model = ReadModel.connect(
        settings.redis, settings.redis_prefix, reference_prices=dict(TOPOLOGY.risk.reference_prices)
    )
    try:
        await store.append(events)
        await model.apply(events)
    finally:
        await store.close()
        await model.close()
