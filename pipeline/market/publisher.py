"""Run the venues' market-data sources and publish what they report on their topics.

Every worker runs the sources of the venues it has.  With several workers the same pool
state is published more than once; the topic is compacted and keyed by venue and pool, and
a planner keeps only the latest state per pool, so a duplicate costs a record, not a wrong
route.  (A leader-only publisher would save those records but stall market data for a
session timeout whenever the leader dies.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from pipeline.market.feed import pool_key, pool_value
from pipeline.plugins.market import MarketSource, MarketSourceSpec
from pipeline.plugins.venue import Venue

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, bytes], Awaitable[object]]
"""``send(topic, key, value)``, resolved once the broker has the record."""

RESTART_DELAY_S = 1.0


class MarketPublisher:
    """One task per (source, venue): read its updates, publish each pool state."""

    def __init__(self, specs: Sequence[MarketSourceSpec], venues: Mapping[str, Venue],
                 send: Send) -> None:
        self._pairs = [(spec, venues[spec.venue]) for spec in specs if spec.venue in venues]
        self._send = send
        self._sources: list[MarketSource] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0

    @property
    def venues(self) -> set[str]:
        """The venues whose pools come from market data rather than from ``Venue.pools``."""
        return {spec.venue for spec, _venue in self._pairs}

    def start(self) -> None:
        for spec, venue in self._pairs:
            self._tasks.append(asyncio.create_task(self._run(spec, venue), name=spec.name))

    async def stop(self) -> None:
        for source in self._sources:
            source.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self, spec: MarketSourceSpec, venue: Venue) -> None:
        # A source that fails is restarted: its first batch is a full snapshot again, so
        # nothing it missed stays missing.
        while True:
            source = spec.factory(venue)
            self._sources.append(source)
            try:
                async for states in source.updates():
                    await asyncio.gather(*(self._send(spec.topic, pool_key(s), pool_value(s))
                                           for s in states))
                    self.published += len(states)
                return
            except Exception:
                log.exception("market source failed; restarting it",
                              extra={"source": spec.name, "venue": spec.venue})
                await asyncio.sleep(RESTART_DELAY_S)
            finally:
                source.close()
                self._sources.remove(source)
