"""Run the venues' market-data sources and publish what they report on their topics.

A ``PoolState`` is keyed ``venue/pool_id`` here; a ``MarketRecord`` (an L2 book message)
carries its own key and value.

Every worker runs the sources of the venues it has.  With several workers the same pool
state is published more than once; the topic is compacted and keyed by venue and pool, and
a planner keeps only the latest state per pool, so a duplicate costs a record, not a wrong
route.  (A leader-only publisher would save those records but stall market data for a
session timeout whenever the leader dies.)  Book messages published twice are
interchangeable (a delta's sequence numbers are the venue ledger's versions,
``plugins.clob_venue.books``): a replica ignores the second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from pipeline.market.feed import pool_key, pool_value
from pipeline.models.market import PoolState
from pipeline.plugins.market import MarketData, MarketRecord, MarketSource, MarketSourceSpec
from pipeline.plugins.venue import PaperTwin, Venue

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, bytes], Awaitable[object]]
"""``send(topic, key, value)``, resolved once the broker has the record."""

STOP_SEND_S = 5.0
RESTART_DELAY_S = 1.0


class MarketPublisher:
    """One task per (source, venue): read its updates, publish each pool state."""

    def __init__(
        self, specs: Sequence[MarketSourceSpec], venues: Mapping[str, Venue], send: Send
    ) -> None:
        # A paper twin's market data is its live venue's (built read-only for it).
        self._pairs = [
            (spec, _market_venue(venues[spec.venue])) for spec in specs if spec.venue in venues
        ]
        self._twinned = {name for name, venue in venues.items() if isinstance(venue, PaperTwin)}
        self._send = send
        self._sources: list[MarketSource] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0

    @property
    def venues(self) -> set[str]:
        """The venues whose pools come from market data rather than from ``Venue.pools``."""
        return {
            spec.venue
            for spec, _venue in self._pairs
            if spec.data is MarketData.POOLS and spec.routing and spec.venue not in self._twinned
        }  # a paper twin is asked: its ledger has our paper fills, the published states not

    @property
    def book_venues(self) -> set[str]:
        """The venues whose L2 books this worker publishes."""
        return {spec.venue for spec, _venue in self._pairs if spec.data is MarketData.BOOKS}

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
            if spec.venue in self._twinned:
                # Paper mode: the live venue is started here, for its market data only (the
                # stages use its twin); a node that is down delays the prices, not the stages.
                try:
                    await venue.start()
                except Exception as exc:
                    log.warning(
                        "paper mode: live venue for market data not reachable (%r); retrying",
                        exc,
                        extra={"source": spec.name, "venue": spec.venue},
                    )
                    await asyncio.sleep(RESTART_DELAY_S)
                    continue
            source = spec.factory(venue)
            self._sources.append(source)
            try:
                async for items in source.updates():
                    await self._publish(spec.topic, items)
                return
            except Exception:
                log.exception(
                    "market source failed; restarting it",
                    extra={"source": spec.name, "venue": spec.venue},
                )
                await asyncio.sleep(RESTART_DELAY_S)
            finally:
                source.close()
                self._sources.remove(source)

    async def _publish(self, topic: str, items: Sequence[PoolState | MarketRecord]) -> None:
        """Send one update's records and count them once acknowledged.  A stop that comes
        while they are in flight waits for them (briefly): records handed to the producer
        are delivered anyway, and ``published`` must count what is on the topic."""
        sending = asyncio.gather(*(self._send(topic, *_record(item)) for item in items))
        try:
            await asyncio.shield(sending)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sending, STOP_SEND_S)
            if sending.done() and not sending.cancelled() and sending.exception() is None:
                self.published += len(items)
            raise
        self.published += len(items)


def _market_venue(venue: Venue) -> Venue:
    return venue.live if isinstance(venue, PaperTwin) else venue


def _record(item: PoolState | MarketRecord) -> tuple[bytes, bytes]:
    if isinstance(item, MarketRecord):
        return item.key, item.value
    return pool_key(item), pool_value(item)
