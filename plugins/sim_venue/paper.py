"""Paper twins: the sim venue's fill model standing in for a live venue, at its market data.

In paper mode (``app.mode: paper``, ``sep up --mode paper``) every live venue (a chain venue:
``VenueSpec.live``) is replaced by a ``PaperTwinVenue`` under the live venue's *name*, so an
intent allowed ``uniswap_v3`` runs unchanged and its events still say ``uniswap_v3``::

    chain --PoolWatcher (the live venue, read-only)--> sep.market.pools  key uniswap_v3/<pool>
      --PoolFeed + MarketMirror (every planning worker)--> twin.set_market(states, offsets)
      --> the twin's ledger: each pool at the chain's latest state (virtual reserves)
    plan: routes on twin.pools()       execute: twin.submit/wait_receipt (constant product,
                                        the pool's fee, nothing sent to the chain)

The twin is a ``SimVenue`` with its own ledger (``paper-ledger.sqlite`` in the live venue's
data directory) whose pools are whatever the market has shown under its name: a pool joins
at its first published state.  A Uniswap V3 state's virtual reserves make a constant-product
pool that is the V3 pool exactly within the active tick range (up to the fee, which V3 keeps
out of the reserves and this model adds to them); a trade that would cross an initialised
tick is priced as if the range went on.

Our own fills move the twin's pools until that pool's next market state replaces them (the
backtest's rule, ``pipeline.backtest.driver``): the chain never sees our trades, so the next
state it publishes is the market without them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue, VenueContext
from plugins.sim_venue.amm import Pool
from plugins.sim_venue.config import SimVenueConfig
from plugins.sim_venue.venue import SimVenue

log = logging.getLogger(__name__)

PAPER_LEDGER = "paper-ledger.sqlite"


class PaperTwinVenue(SimVenue):
    """A ``SimVenue`` named after the live venue ``live``, its pools set by market data."""

    def __init__(self, name: str, live: Venue, context: VenueContext) -> None:
        # No configured pools: they come from the market (``set_market``).  Latency 0: a
        # fill meets the pools as they are when it executes.
        config = SimVenueConfig.model_construct(
            latency_ms=0,
            pools=(),
            ledger_file=PAPER_LEDGER,
            market_interval_ms=1_000,
            inject_failures=None,
            flow=None,
        )
        super().__init__(config, context, name=name)
        self.live = live

    async def stop(self) -> None:
        await super().stop()
        await self.live.stop()  # started by the market publisher, for its market source

    async def set_market(self, states: Sequence[tuple[PoolState, int]]) -> int:
        pools = []
        for state, mark in states:
            if state.reserve0 <= 0 or state.reserve1 <= 0:
                # A V3 pool with no liquidity in range: nothing to trade against.
                log.warning("paper pool %s has no liquidity in range; not taken", state.pool_id)
                continue
            pools.append(
                (
                    Pool(
                        state.pool_id,
                        state.token0,
                        state.token1,
                        state.reserve0,
                        state.reserve1,
                        state.fee,
                    ),
                    mark,
                )
            )
        if not pools:
            return 0
        return await self._write(lambda: self.ledger.set_market(pools))

    def _pool_ids(self, current: Mapping[str, Pool]) -> Iterable[str]:
        return sorted(current)

    async def _known_pools(self) -> Mapping[str, Pool]:
        # Pools join as the market shows them, possibly through another worker's mirror.
        return await self._unlocked(self.ledger.pools)


def make_paper_twin(name: str, live: Venue, context: VenueContext) -> PaperTwinVenue:
    """The sim plugin's ``VenueSpec.twin``: a paper twin of ``live`` named ``name``."""
    return PaperTwinVenue(name, live, context)
