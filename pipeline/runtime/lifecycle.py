"""What a worker starts once and stops last: control and market feeds, venues, processors.

A stop runs in the reverse order, and only after the runtime has drained (see
``pipeline.runtime.delivery.kafka``): stopping a venue or a store while a stage still uses it
had every in-flight record fail and be dead-lettered.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable

from pipeline.control.feed import ControlFeed
from pipeline.market.books import BookFeed
from pipeline.market.feed import PoolFeed
from pipeline.market.mirror import MarketMirror
from pipeline.market.publisher import MarketPublisher
from pipeline.risk.feed import RiskFeed
from pipeline.stages.base import StageContext, StageProcessor
from pipeline.topology.models import StageSpec

log = logging.getLogger(__name__)


def load_builder(spec: StageSpec) -> Callable[[StageContext], StageProcessor]:
    module_name, attr = spec.function.split(":")
    builder = getattr(importlib.import_module(module_name), attr)
    if not callable(builder):
        raise TypeError(f"stage {spec.name}: {spec.function} is not callable")
    return builder  # type: ignore[no-any-return]


class Lifecycle:
    """Starts the market feed, venues, market publishers and processors once; stops them.

    Started before the worker consumes anything, so the first batch never runs against
    venues that are not connected yet.
    """

    def __init__(self, context: StageContext) -> None:
        self._context = context
        self.processors: list[StageProcessor] = []
        self.control_feed: ControlFeed | None = None
        self.risk_feed: RiskFeed | None = None
        self.feed: PoolFeed | None = None
        self.book_feed: BookFeed | None = None
        self.publisher: MarketPublisher | None = None
        self.mirror: MarketMirror | None = None
        """Paper mode: the paper twins' pools follow the market (``pipeline.market.mirror``)."""
        self._started: asyncio.Task[None] | None = None
        self._up: set[object] = set()
        """What has started (by identity): a retried start skips it."""

    async def _start(self) -> None:
        # The control plane first: no stage may act before a kill switch is known.
        if self.control_feed is not None and self.control_feed not in self._up:
            await self.control_feed.start()
            self._up.add(self.control_feed)
        # Every strategy's positions before validate judges its first intent.
        if self.risk_feed is not None and self.risk_feed not in self._up:
            await self.risk_feed.start()
            self._up.add(self.risk_feed)
        if self.feed is not None and self.feed not in self._up:
            await self.feed.start()
            self._up.add(self.feed)
        if self.book_feed is not None and self.book_feed not in self._up:
            await self.book_feed.start()
            self._up.add(self.book_feed)
        for venue in self._context.venues.values():
            if venue not in self._up:
                await venue.start()
                self._up.add(venue)
        if self.publisher is not None and self.publisher not in self._up:
            self.publisher.start()
            self._up.add(self.publisher)
        if self.mirror is not None and self.mirror not in self._up:
            await self.mirror.start()  # after the venues: it writes the twins' ledger
            self._up.add(self.mirror)
        for processor in self.processors:
            if processor not in self._up:
                await processor.start()
                self._up.add(processor)
        log.info("stages started", extra={"stages": [p.name for p in self.processors]})

    async def ensure_started(self) -> None:
        """Start everything once; after a failed start, the next call tries again.

        A start can fail for a passing reason (a store still coming up, a shared SQLite file
        another worker is initialising); remembering the failure would stall the worker for
        good, so the agent's batch fails instead and the next one retries what is not up.
        """
        if (
            self._started is not None
            and self._started.done()
            and (self._started.cancelled() or self._started.exception() is not None)
        ):
            log.warning(
                "retrying the stages' start after a failure",
                extra={
                    "error": repr(None if self._started.cancelled() else self._started.exception())
                },
            )
            await asyncio.sleep(1.0)
            self._started = None
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        if self._started is None or not self._started.done():
            return
        for processor in reversed(self.processors):
            if processor in self._up:
                await processor.stop()
        if self.mirror is not None and self.mirror in self._up:
            await self.mirror.stop()
        if self.publisher is not None and self.publisher in self._up:
            await self.publisher.stop()
        for venue in self._context.venues.values():
            if venue in self._up:
                await venue.stop()
        if self.feed is not None and self.feed in self._up:
            await self.feed.stop()
        if self.book_feed is not None and self.book_feed in self._up:
            await self.book_feed.stop()
        if self.risk_feed is not None and self.risk_feed in self._up:
            await self.risk_feed.stop()
        if self.control_feed is not None and self.control_feed in self._up:
            await self.control_feed.stop()
        self._up.clear()
