"""What the app's handlers share: connections opened once in the lifespan, closed after.

The Kafka producer starts on the first ``POST /intents`` rather than at start-up, so the read
side (pages, queries, the live stream) works while the broker is away, and ``/health`` says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from pipeline.client import IntentProducer
from pipeline.config import Settings
from pipeline.market.books import TOPIC as BOOKS_TOPIC
from pipeline.market.books import BookFeed
from pipeline.priority.submit_lanes import SubmitLanes
from pipeline.store.changes import ChangeStream
from pipeline.store.dedupe import DedupeStore, RedisDedupeStore
from pipeline.store.eventstore import EventStore
from pipeline.store.history import History
from pipeline.store.redrive import Redriver
from pipeline.store.views import Views
from pipeline.topology.models import Topology
from ui.broadcast import ChangeBroadcaster


@dataclass
class Services:
    settings: Settings
    topology: Topology
    redis: aioredis.Redis
    store: EventStore
    views: Views
    changes: ChangeStream
    broadcaster: ChangeBroadcaster
    dedupe: DedupeStore
    """Where ``POST /intents`` claims a submission's key before producing it (as ingest does)."""
    history: History
    """The charts' series, read from the event store alone."""
    redriver: Redriver
    """Puts dead letters back on their topics (operator action), and says which were."""
    _producer: IntentProducer | None = None
    _producer_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _book_feed: BookFeed | None = None
    _book_feed_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(cls, settings: Settings, topology: Topology) -> Services:
        client = aioredis.from_url(settings.redis, decode_responses=True)
        store = await EventStore.connect(settings.postgres, min_size=1, max_size=8)
        risk = topology.risk
        changes = ChangeStream(client, settings.redis_prefix)
        history = await History.connect(
            settings.postgres,
            quote_asset=risk.quote_asset,
            reference_prices=dict(risk.reference_prices),
        )
        return cls(
            settings=settings,
            topology=topology,
            redis=client,
            store=store,
            views=Views(
                client,
                settings.redis_prefix,
                quote_asset=risk.quote_asset,
                reference_prices=dict(risk.reference_prices),
            ),
            changes=changes,
            broadcaster=ChangeBroadcaster(changes),
            dedupe=RedisDedupeStore(client, settings.redis_prefix, settings.dedupe_ttl_s),
            history=history,
            redriver=await Redriver.connect(settings.postgres, settings.kafka, topology),
        )

    async def producer(self) -> IntentProducer:
        async with self._producer_lock:
            if self._producer is None:
                # With lanes.submit: each submission to its input lane topic.
                producer = IntentProducer(
                    self.settings.kafka,
                    linger_ms=0,
                    lanes=SubmitLanes(self.topology),
                    topology=self.topology,
                )
                await asyncio.wait_for(producer.__aenter__(), timeout=10)
                self._producer = producer
            return self._producer

    async def book_feed(self) -> BookFeed:
        """The books on ``sep.market.books``, followed from the first call on (as the
        planners follow them: ``pipeline.market.feed``)."""
        async with self._book_feed_lock:
            if self._book_feed is None:
                assets = {a.symbol: a.decimals for a in self.topology.assets}
                topic = self.topology.topic(BOOKS_TOPIC)
                feed = BookFeed(
                    self.settings.kafka, assets.get, BOOKS_TOPIC, partitions=topic.partitions
                )
                try:
                    await feed.start()
                except BaseException:
                    await feed.stop()
                    raise
                self._book_feed = feed
            return self._book_feed

    async def close(self) -> None:
        if self._book_feed is not None:
            await self._book_feed.stop()
        await self.broadcaster.close()
        if self._producer is not None:
            await self._producer.__aexit__(None, None, None)
        await self.store.close()
        await self.history.close()
        await self.redriver.close()
        await self.redis.aclose()


def services_of(app: Any) -> Services:
    services: Services = app.state.services
    return services
