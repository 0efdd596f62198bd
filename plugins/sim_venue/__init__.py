"""The built-in ``sim`` venue: simulated constant-product pools with fees and latency.

Used for paper trading, the end-to-end tests and the benchmarks.  Configured under
``plugins.venues.sim.config`` in ``topology.yaml`` (see ``SimVenueConfig``); its state is a
SQLite ledger in the venue's data directory, shared by every worker process.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.venue import VenueContext, VenueSpec
from pipeline.topology.loader import TopologyError, yaml_path
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

    The config model cannot see the asset registry when the manager validates it, so the
    checks that need it run again here, with the registry as validation context; their
    errors name the YAML path like the manager's own.
    """
    data = config.model_dump(mode="json")
    try:
        checked = SimVenueConfig.model_validate(data, context={"assets": context.assets})
    except ValidationError as exc:
        prefix = f"plugins.venues.{VENUE_NAME}.config"
        raise TopologyError(
            "topology.yaml",
            [(f"{prefix}.{yaml_path(e['loc'], data)}".rstrip("."), e["msg"])
             for e in exc.errors()],
        ) from exc
    return SimVenue(checked, context)


@hookimpl
def sep_register_venues(register: Callable[[VenueSpec], None]) -> None:
    register(VenueSpec(
        name=VENUE_NAME,
        config_model=SimVenueConfig,
        factory=make_sim_venue,
        description="simulated constant-product pools with fees and latency (SQLite ledger)",
    ))
