"""The sim venue's market-data source: every pool's state, every ``market_interval_ms``.

A tick, not a change feed: each round yields every configured pool as the ledger has it now,
whether or not it moved, so the strategy runner's strategies hear the market (their clock)
even when nothing trades, as they would from a live price feed.  With ``flow`` configured,
each round first makes the rest of the market's trades of the moment
(``plugins.sim_venue.flow``), once between all the workers.

    every market_interval_ms:  ledger ──► [PoolState per pool] ──► sep.market.pools
                                                              (key sim/<pool_id>, compacted)

Planners do not route on these states (``MarketSourceSpec.routing=False``): the ledger is
local and exact, and a published state lags it by up to an interval, so the plan stage keeps
asking the venue (``SimVenue.pools``) as before.  With several workers each publishes the
same states; the topic is compacted and every reader keeps the latest per pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue
from plugins.sim_venue.venue import SimVenue

log = logging.getLogger(__name__)

POOLS_TOPIC = "sep.market.pools"


class SimPoolTicker:
    def __init__(self, venue: SimVenue, interval_s: float) -> None:
        self.venue = venue
        self.interval_s = interval_s
        self._closed = asyncio.Event()

    def close(self) -> None:
        self._closed.set()

    async def updates(self) -> AsyncIterator[list[PoolState]]:
        while not self._closed.is_set():
            try:
                await self.venue.trade_flow()  # the rest of the market, if configured
            except Exception as exc:  # a busy ledger: this tick's trades are skipped
                log.warning("sim market flow: trades skipped this tick (%r)", exc)
            try:
                yield await self.venue.pools()
            except Exception as exc:  # a locked or busy ledger: the next tick tries again
                log.warning("sim market data: pools unreadable (%r); next tick retries", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=self.interval_s)


def make_pool_ticker(venue: Venue) -> SimPoolTicker:
    if not isinstance(venue, SimVenue):
        raise TypeError(f"the sim pool ticker needs a SimVenue, got {type(venue).__name__}")
    return SimPoolTicker(venue, venue.config.market_interval_ms / 1000)
