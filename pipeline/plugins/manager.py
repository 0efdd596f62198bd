"""The plugin manager: built-ins first, then installed entry points, then ``check_pending``."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pluggy
from pydantic import ValidationError

from pipeline.config import Settings
from pipeline.plugins import hookspecs
from pipeline.plugins.market import MarketSourceSpec
from pipeline.plugins.venue import Venue, VenueContext, VenueSpec
from pipeline.topology.loader import TopologyError, yaml_path
from pipeline.topology.models import Topology

# Built-in plugins are ordinary plugins, registered through the same manager.
BUILTIN_PLUGINS: tuple[str, ...] = ("plugins.sim_venue", "plugins.uniswap_v3")


class PluginError(Exception):
    """A plugin misbehaved at load time (duplicate name, unknown venue in the topology...)."""


def make_plugin_manager(*, load_entrypoints: bool | None = None) -> pluggy.PluginManager:
    """A manager with the built-ins and (outside pytest) the installed ``sep`` entry points.

    Under pytest installed plugins are not loaded, so tests stay hermetic (STYLE rule 4).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entrypoints is None:
        load_entrypoints = "pytest" not in sys.modules and Settings().load_plugins
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    pm.check_pending()
    return pm


def venue_specs(pm: pluggy.PluginManager) -> dict[str, VenueSpec]:
    specs: dict[str, VenueSpec] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.sep_register_venues.get_hookimpls():
        collected: list[VenueSpec] = []
        impl.function(register=collected.append)
        for spec in collected:
            if spec.name in specs:
                raise PluginError(
                    f"venue {spec.name!r} registered by both {owners[spec.name]!r} "
                    f"and {impl.plugin_name!r}"
                )
            specs[spec.name] = spec
            owners[spec.name] = impl.plugin_name
    return specs


def market_sources(pm: pluggy.PluginManager) -> list[MarketSourceSpec]:
    """Every market-data source the installed plugins register, in registration order."""
    specs: list[MarketSourceSpec] = []
    pm.hook.sep_register_market_sources(register=specs.append)
    for spec in specs:
        if not isinstance(spec, MarketSourceSpec):
            raise PluginError(f"sep_register_market_sources registered {spec!r}, "
                              "not a MarketSourceSpec")
    return specs


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str
    venues: tuple[str, ...]


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What is installed and where it came from (for ``sep plugins``)."""
    dists = {
        id(plugin): f"{dist.project_name} {dist.version}"
        for plugin, dist in pm.list_plugin_distinfo()
    }
    out = []
    for name, plugin in pm.list_name_plugin():
        collected: list[VenueSpec] = []
        register = getattr(plugin, "sep_register_venues", None)
        if register is not None:
            register(register=collected.append)
        source = dists.get(id(plugin), "built-in" if name in BUILTIN_PLUGINS else "registered")
        out.append(PluginInfo(name, source, tuple(s.name for s in collected)))
    return out


def build_venues(
    topology: Topology, data_dir: Path, pm: pluggy.PluginManager | None = None
) -> dict[str, Venue]:
    """Instantiate every enabled venue in the topology, validating each one's config."""
    pm = pm or make_plugin_manager()
    specs = venue_specs(pm)
    assets = {a.symbol: a for a in topology.assets}
    venues: dict[str, Venue] = {}
    for name, use in topology.plugins.venues.items():
        if not use.enabled:
            continue
        if name not in specs:
            raise TopologyError(
                "topology.yaml",
                [
                    (
                        f"plugins.venues.{name}",
                        f"no installed plugin provides venue {name!r}; "
                        f"installed: {sorted(specs) or 'none'}",
                    )
                ],
            )
        spec = specs[name]
        try:
            config = spec.config_model.model_validate(use.config, context={"assets": assets})
        except ValidationError as exc:
            prefix = f"plugins.venues.{name}.config"
            raise TopologyError(
                "topology.yaml",
                [
                    (f"{prefix}.{yaml_path(e['loc'], use.config)}".rstrip("."), e["msg"])
                    for e in exc.errors()
                ],
            ) from exc
        context = VenueContext(data_dir=data_dir / "venues" / name, assets=assets)
        venues[name] = spec.factory(config, context)
    return venues
