"""What the plugins register, and what the topology uses of it.

    make_plugin_manager()        built-ins, then the ``sep`` entry points, then check_pending
                                 (``loading.py``; a plugin that fails to load is recorded)
    venue_specs(pm) ...          one register hook's specs by name, from every plugin; a name
                                 two plugins register is an error naming both
    check_plugins(topology, pm)  every enabled section under ``plugins:`` validated by its
                                 plugin's own config model; errors name the YAML path
    build_venues / build_risk_checks / build_strategies
                                 the configured objects, made by the plugins' factories

``build_venues`` is what a worker calls first, so it checks every plugin section (strategies
and risk checks too): a worker never starts on a topology some plugin refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import pluggy
from pydantic import BaseModel, ValidationError

from pipeline.plugins.loading import (
    BUILTIN_PLUGINS,
    LoadFailure,
    PluginError,
    SepPluginManager,
    make_plugin_manager,
    registered,
)
from pipeline.plugins.market import MarketSourceSpec
from pipeline.plugins.risk import RiskCheck, RiskCheckContext, RiskCheckSpec
from pipeline.plugins.strategy import Strategy, StrategyContext, StrategySpec
from pipeline.plugins.venue import SimulatedTime, TwinFactory, Venue, VenueContext, VenueSpec
from pipeline.topology.loader import TopologyError, yaml_path
from pipeline.topology.models import PluginUse, Topology

__all__ = [
    "BUILTIN_PLUGINS",
    "PluginError",
    "build_risk_checks",
    "build_strategies",
    "build_strategy",
    "build_venues",
    "check_plugins",
    "make_plugin_manager",
    "market_sources",
    "risk_check_specs",
    "strategy_specs",
    "venue_specs",
]


class Named(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=Named)


@dataclass(frozen=True)
class Registered(Generic[S]):
    spec: S
    plugin: str
    """The name of the plugin that registered it."""


def collect(pm: pluggy.PluginManager, hook: str, spec_type: type[S]) -> dict[str, Registered[S]]:
    """Every spec the plugins register through ``hook``, by name, in registration order."""
    found: dict[str, Registered[S]] = {}
    for impl in getattr(pm.hook, hook).get_hookimpls():
        for spec in registered(impl, spec_type):
            if spec.name in found:
                raise PluginError(
                    f"{spec_type.__name__} {spec.name!r} registered by both "
                    f"{found[spec.name].plugin!r} and {impl.plugin_name!r}"
                )
            found[spec.name] = Registered(spec, impl.plugin_name)
    return found


def venue_specs(pm: pluggy.PluginManager) -> dict[str, VenueSpec]:
    return {n: r.spec for n, r in collect(pm, "sep_register_venues", VenueSpec).items()}


def strategy_specs(pm: pluggy.PluginManager) -> dict[str, StrategySpec]:
    return {n: r.spec for n, r in collect(pm, "sep_register_strategies", StrategySpec).items()}


def risk_check_specs(pm: pluggy.PluginManager) -> dict[str, RiskCheckSpec]:
    return {n: r.spec for n, r in collect(pm, "sep_register_risk_checks", RiskCheckSpec).items()}


def market_sources(pm: pluggy.PluginManager) -> list[MarketSourceSpec]:
    """Every market-data source the plugins register, in registration order."""
    found = collect(pm, "sep_register_market_sources", MarketSourceSpec)
    return [r.spec for r in found.values()]


# ----------------------------------------------------------------------- the topology's use


@dataclass(frozen=True)
class Configured(Generic[S]):
    """One enabled entry under ``plugins.<section>``: its spec and its validated config."""

    name: str
    spec: S
    config: BaseModel


class Configurable(Named, Protocol):
    @property
    def config_model(self) -> type[BaseModel]: ...


C = TypeVar("C", bound=Configurable)


@dataclass
class PluginSections:
    """The topology's enabled plugin sections, each checked against what is installed."""

    venues: list[Configured[VenueSpec]]
    strategies: list[Configured[StrategySpec]]
    risk_checks: list[Configured[RiskCheckSpec]]


def check_plugins(topology: Topology, pm: pluggy.PluginManager | None = None) -> PluginSections:
    """Every enabled entry under ``plugins:`` resolved to an installed spec, its ``config``
    validated by the spec's model (with the asset registry as validation context).

    Raises ``TopologyError`` with every problem, each at its YAML path; a name no plugin
    provides says which plugins failed to load, since one of them may be why.
    """
    pm = pm or make_plugin_manager()
    failures = pm.failures if isinstance(pm, SepPluginManager) else []
    problems: list[tuple[str, str]] = []
    uses = topology.plugins
    sections = PluginSections(
        venues=_configure(topology, "venues", uses.venues, venue_specs(pm), failures, problems),
        strategies=_configure(
            topology, "strategies", uses.strategies, strategy_specs(pm), failures, problems
        ),
        risk_checks=_configure(
            topology, "risk_checks", uses.risk_checks, risk_check_specs(pm), failures, problems
        ),
    )
    if problems:
        raise TopologyError("topology.yaml", problems)
    return sections


def _configure(
    topology: Topology,
    section: str,
    uses: Mapping[str, PluginUse],
    specs: Mapping[str, C],
    failures: list[LoadFailure],
    problems: list[tuple[str, str]],
) -> list[Configured[C]]:
    assets = {a.symbol: a for a in topology.assets}
    kind = section.replace("_", " ").removesuffix("s").replace("strategie", "strategy")
    configured: list[Configured[C]] = []
    for name, use in uses.items():
        if not use.enabled:
            continue  # a disabled entry's plugin need not even be installed
        path = f"plugins.{section}.{name}"
        plugin = use.plugin_name(name)
        spec = specs.get(plugin)
        if spec is None:
            installed = sorted(specs) or "none"
            message = f"no installed plugin provides {kind} {plugin!r}; installed: {installed}"
            problems.append((path, "; ".join([message, *map(str, failures)])))
            continue
        try:
            config = spec.config_model.model_validate(use.config, context={"assets": assets})
        except ValidationError as exc:
            problems += [
                (f"{path}.config.{yaml_path(e['loc'], use.config)}".rstrip("."), e["msg"])
                for e in exc.errors()
            ]
            continue
        configured.append(Configured(name, spec, config))
    return configured


def build_venues(
    topology: Topology,
    data_dir: Path,
    pm: pluggy.PluginManager | None = None,
    *,
    simulated: SimulatedTime | None = None,
) -> dict[str, Venue]:
    """Instantiate every enabled venue in the topology, after checking every plugin section
    (``simulated``: a backtest's clock, handed to every venue).

    In paper mode each live venue (``VenueSpec.live``) is built read-only and handed to the
    paper twin made in its place, under its name: an intent allowed ``uniswap_v3`` still
    finds ``uniswap_v3``, and the twin fills it (``pipeline.market.mirror``)."""
    pm = pm or make_plugin_manager()
    sections = check_plugins(topology, pm)
    assets = {a.symbol: a for a in topology.assets}
    paper = topology.app.mode == "paper"
    twin = _twin_factory(pm) if paper and any(u.spec.live for u in sections.venues) else None
    venues: dict[str, Venue] = {}
    for use in sections.venues:
        context = VenueContext(
            data_dir=data_dir / "venues" / use.name,
            assets=assets,
            simulated=simulated,
            read_only=twin is not None and use.spec.live,
        )
        venue = use.spec.factory(use.config, context)
        if twin is not None and use.spec.live:
            made = twin(use.name, venue, context)
            if not isinstance(made, Venue):
                raise PluginError(f"the paper twin of {use.name!r} is not a venue: {made!r}")
            venue = made
        venues[use.name] = venue
    return venues


def _twin_factory(pm: pluggy.PluginManager) -> TwinFactory:
    """The factory of paper twins (the sim venue's); paper mode with a live venue needs one."""
    twins = [spec.twin for spec in venue_specs(pm).values() if spec.twin is not None]
    if not twins:
        raise PluginError(
            "paper mode: no installed venue plugin makes paper twins (the built-in sim "
            "venue does); run in live mode or install it"
        )
    return twins[0]


def build_risk_checks(
    topology: Topology, pm: pluggy.PluginManager | None = None
) -> tuple[RiskCheck, ...]:
    """The risk checks the topology enables, in its order (for the validate stage)."""
    if not any(use.enabled for use in topology.plugins.risk_checks.values()):
        return ()  # no plugin manager to build for the common case
    context = RiskCheckContext(assets={a.symbol: a for a in topology.assets}, limits=topology.risk)
    checks = []
    for use in check_plugins(topology, pm).risk_checks:
        check = use.spec.factory(use.config, context)
        if not isinstance(check, RiskCheck):
            raise PluginError(f"risk check {use.name!r}: its factory made {check!r}")
        checks.append(check)
    return tuple(checks)


def build_strategies(
    topology: Topology, data_dir: Path, pm: pluggy.PluginManager | None = None
) -> dict[str, Strategy]:
    """The strategies the topology enables, by strategy id (for the strategy runner)."""
    strategies: dict[str, Strategy] = {}
    for use in check_plugins(topology, pm).strategies:
        strategies[use.name] = _make_strategy(topology, data_dir, use.name, use.spec, use.config)
    return strategies


def build_strategy(
    topology: Topology,
    data_dir: Path,
    strategy_id: str,
    plugin: str,
    config: Mapping[str, object],
    pm: pluggy.PluginManager | None = None,
) -> Strategy:
    """One strategy made at run time (``sep strategy enable``): ``config`` validated by the
    plugin's model as the topology's section would be; raises ``TopologyError`` naming
    ``plugins.strategies.<id>.config...`` when it does not validate."""
    specs = strategy_specs(pm or make_plugin_manager())
    spec = specs.get(plugin)
    path = f"plugins.strategies.{strategy_id}"
    if spec is None:
        message = f"no installed plugin provides strategy {plugin!r}; installed: {sorted(specs)}"
        raise TopologyError("control", [(path, message)])
    assets = {a.symbol: a for a in topology.assets}
    try:
        validated = spec.config_model.model_validate(dict(config), context={"assets": assets})
    except ValidationError as exc:
        raise TopologyError(
            "control",
            [
                (f"{path}.config.{yaml_path(e['loc'], dict(config))}".rstrip("."), e["msg"])
                for e in exc.errors()
            ],
        ) from exc
    return _make_strategy(topology, data_dir, strategy_id, spec, validated)


def _make_strategy(
    topology: Topology, data_dir: Path, strategy_id: str, spec: StrategySpec, config: BaseModel
) -> Strategy:
    context = StrategyContext(
        strategy_id=strategy_id,
        assets={a.symbol: a for a in topology.assets},
        data_dir=data_dir / "strategies" / strategy_id,
    )
    strategy = spec.factory(config, context)
    if not isinstance(strategy, Strategy):
        raise PluginError(f"strategy {strategy_id!r}: its factory made {strategy!r}")
    return strategy
