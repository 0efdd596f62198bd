"""What is installed, where it came from, what it registers and what the topology uses of it
(``sep plugins``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from pipeline.plugins.loading import BUILTIN_PLUGINS, SPEC_TYPES, SepPluginManager, registered
from pipeline.plugins.manager import PluginError, check_plugins, collect
from pipeline.plugins.market import MarketSourceSpec
from pipeline.topology.loader import TopologyError
from pipeline.topology.models import Topology

SECTIONS = {
    "sep_register_venues": "venues",
    "sep_register_strategies": "strategies",
    "sep_register_risk_checks": "risk_checks",
    "sep_register_market_sources": "market_sources",
}
"""Each register hook and what ``sep plugins`` calls what it registers."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str
    """``built-in``, ``entry point`` (installed), ``registered`` (by hand, as tests do) or
    ``failed`` (an entry point that did not load: see ``error``)."""
    distribution: str | None = None
    version: str | None = None
    venues: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()
    risk_checks: tuple[str, ...] = ()
    market_sources: tuple[str, ...] = ()
    used: tuple[str, ...] = ()
    """What the topology uses of it, as ``section.name`` (``venues.sim``); a market source
    is used when its venue is."""
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PluginReport:
    plugins: list[PluginInfo]
    problems: list[str] = field(default_factory=list)
    """Conflicts between plugins, and what the topology asks that they cannot give."""


def describe_plugins(
    pm: pluggy.PluginManager, topology: Topology | None = None
) -> list[PluginInfo]:
    """One ``PluginInfo`` per plugin, the ones that failed to load last."""
    enabled: dict[str, set[str]] = {}
    if topology is not None:
        uses = topology.plugins
        for section, entries in (
            ("venues", uses.venues),
            ("strategies", uses.strategies),
            ("risk_checks", uses.risk_checks),
        ):
            enabled[section] = {
                use.plugin_name(name) for name, use in entries.items() if use.enabled
            }
    origins = pm.origins if isinstance(pm, SepPluginManager) else {}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        names: dict[str, tuple[str, ...]] = {}
        used: list[str] = []
        error = None
        for hook, spec_type in SPEC_TYPES.items():
            section = SECTIONS[hook]
            specs: list[Any] = []
            try:
                for impl in getattr(pm.hook, hook).get_hookimpls():
                    if impl.plugin_name == name:
                        specs += registered(impl, spec_type)
            except Exception as exc:  # a plugin registered by hand is not dry-run on load
                error = f"{hook}: {type(exc).__name__}: {exc}"
            names[section] = tuple(spec.name for spec in specs)
            for spec in specs:
                if isinstance(spec, MarketSourceSpec):
                    if spec.venue in enabled.get("venues", ()):
                        used.append(f"market_sources.{spec.name}")
                elif spec.name in enabled.get(section, ()):
                    used.append(f"{section}.{spec.name}")
        origin = origins.get(name)
        if name in BUILTIN_PLUGINS:
            source = "built-in"
        elif origin is not None and origin.entry_point:
            source = "entry point"
        else:
            source = "registered"
        infos.append(
            PluginInfo(
                name=name,
                source=source,
                distribution=origin.distribution if origin else None,
                version=origin.version if origin else None,
                venues=names["venues"],
                strategies=names["strategies"],
                risk_checks=names["risk_checks"],
                market_sources=names["market_sources"],
                used=tuple(used),
                error=error,
            )
        )
    for failure in pm.failures if isinstance(pm, SepPluginManager) else ():
        infos.append(
            PluginInfo(
                name=failure.name,
                source="failed",
                distribution=failure.origin.distribution,
                version=failure.origin.version,
                error=failure.error,
            )
        )
    return infos


def plugin_report(pm: pluggy.PluginManager, topology: Topology | None = None) -> PluginReport:
    """``describe_plugins`` plus every problem: two plugins registering one name, and each
    enabled entry of the topology's plugin sections no plugin provides or whose config its
    plugin refuses."""
    report = PluginReport(describe_plugins(pm, topology))
    for hook, spec_type in SPEC_TYPES.items():
        try:
            collect(pm, hook, spec_type)
        except PluginError as exc:
            report.problems.append(str(exc))
        except Exception:  # reported per plugin, in PluginInfo.error
            pass
    if topology is not None and not report.problems:
        try:
            check_plugins(topology, pm)
        except TopologyError as exc:
            report.problems += [
                f"topology.yaml {path}: {message}" for path, message in exc.problems
            ]
    return report
