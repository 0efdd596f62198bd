"""The built-in ``sim`` venue: simulated constant-product pools with fees and latency.

Used for paper trading (also as the paper twin of each live venue in paper mode,
``plugins.sim_venue.paper``), the end-to-end tests and the benchmarks.  Configured under
``plugins.venues.sim.config`` in ``topology.yaml`` (see ``SimVenueConfig``); its state is a
SQLite ledger in the venue's data directory, shared by every worker process.  Its market
source publishes every pool's state on ``sep.market.pools`` each ``market_interval_ms``
(for the strategy runner; planners keep asking the ledger, ``plugins.sim_venue.market``).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.market import MarketSourceSpec
from pipeline.plugins.venue import VenueContext, VenueSpec
from plugins.sim_venue.config import PoolConfig, SimVenueConfig
from plugins.sim_venue.ledger import Ledger, LedgerError
from plugins.sim_venue.market import POOLS_TOPIC, SimPoolTicker, make_pool_ticker
from plugins.sim_venue.paper import PaperTwinVenue, make_paper_twin
from plugins.sim_venue.venue import VENUE_NAME, SimVenue

__all__ = [
    "Ledger",
    "LedgerError",
    "PaperTwinVenue",
    "PoolConfig",
    "SimPoolTicker",
    "SimVenue",
    "SimVenueConfig",
    "make_sim_venue",
    "sep_register_market_sources",
    "sep_register_venues",
]


def make_sim_venue(config: BaseModel, context: VenueContext) -> SimVenue:
    """The venue factory: no I/O here, the ledger opens in ``SimVenue.start``.

    ``config`` was validated by the plugin manager with the asset registry as validation
    context (``build_venues``), so the registry checks have run and name the YAML path.
    """
    if not isinstance(config, SimVenueConfig):
        raise TypeError(f"the sim venue needs a SimVenueConfig, got {type(config).__name__}")
    simulated = context.simulated
    if simulated is None:
        return SimVenue(config, context)
    # A backtest: its clock, its deterministic order refs, its latency waits.
    return SimVenue(
        config,
        context,
        clock_ms=simulated.now_ms,
        new_order_ref=lambda: simulated.next_id(VENUE_NAME),
        wait_until=simulated.wait_until,
    )


@hookimpl
def sep_register_venues(register: Callable[[VenueSpec], None]) -> None:
    register(
        VenueSpec(
            name=VENUE_NAME,
            config_model=SimVenueConfig,
            factory=make_sim_venue,
            description="simulated constant-product pools with fees and latency (SQLite ledger)",
            twin=make_paper_twin,  # paper mode: it fills in place of each live venue
        )
    )


@hookimpl
def sep_register_market_sources(register: Callable[[MarketSourceSpec], None]) -> None:
    register(
        MarketSourceSpec(
            name="sim.pools",
            venue=VENUE_NAME,
            topic=POOLS_TOPIC,
            factory=make_pool_ticker,
            description="every pool's state each market_interval_ms (a tick for strategies)",
            routing=False,
        )
    )
