"""The built-in ``sim`` venue: simulated constant-product pools with fees and latency.

Used for paper trading, the end-to-end tests and the benchmarks.  Configured under
``plugins.venues.sim.config`` in ``topology.yaml`` (see ``SimVenueConfig``); its state is a
SQLite ledger in the venue's data directory, shared by every worker process.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.venue import VenueContext, VenueSpec
from plugins.sim_venue.config import PoolConfig, SimVenueConfig
from plugins.sim_venue.ledger import Ledger, LedgerError
from plugins.sim_venue.venue import VENUE_NAME, SimVenue

__all__ = [
    "Ledger",
    "LedgerError",
    "PoolConfig",
    "SimVenue",
    "SimVenueConfig",
    "make_sim_venue",
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
        )
    )
