"""The plugin manager, hermetically: test plugins are classes registered here and unregistered
after (plugin_support.py); installed entry points are never loaded."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pluggy
import pytest
from plugin_support import (
    BUILTIN_VENUES,
    TOPOLOGY,
    EveryInterval,
    MaxAmount,
    PaperConfig,
    PaperPlugin,
    PaperVenue,
    RiskPlugin,
    StrategyPlugin,
    paper_factory,
    topology_with,
)

from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins import (
    RiskCheckSpec,
    StrategySpec,
    build_risk_checks,
    build_strategies,
    hookimpl,
    risk_check_specs,
    strategy_specs,
    venue_specs,
)
from pipeline.plugins import loading as loading_module
from pipeline.plugins.loading import SepPluginManager
from pipeline.plugins.manager import (
    BUILTIN_PLUGINS,
    PluginError,
    build_venues,
    check_plugins,
    make_plugin_manager,
    market_sources,
)
from pipeline.plugins.venue import PaperTwin, StepRejected, Venue, VenueSpec
from pipeline.topology import TopologyError
from plugins.sim_venue import PaperTwinVenue, SimVenue
from plugins.uniswap_v3 import UniswapV3Venue


class ImpostorPlugin:
    """Registers a venue, a strategy and a risk check under names other plugins use."""

    @hookimpl
    def sep_register_venues(self, register: Callable[[VenueSpec], None]) -> None:
        register(VenueSpec(name="sim", config_model=PaperConfig, factory=paper_factory))

    @hookimpl
    def sep_register_strategies(self, register: Callable[[StrategySpec], None]) -> None:
        register(
            StrategySpec(name="every_interval", config_model=PaperConfig, factory=paper_factory)
        )

    @hookimpl
    def sep_register_risk_checks(self, register: Callable[[RiskCheckSpec], None]) -> None:
        register(RiskCheckSpec(name="max_amount", config_model=PaperConfig, factory=paper_factory))


@pytest.fixture
def pm() -> SepPluginManager:
    return make_plugin_manager(load_entrypoints=False)


@pytest.fixture
def with_test_plugins(pm: SepPluginManager) -> Iterator[SepPluginManager]:
    plugins = {
        "test-paper": PaperPlugin(),
        "test-strategy": StrategyPlugin(),
        "test-risk": RiskPlugin(),
    }
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    try:
        yield pm
    finally:
        for plugin in plugins.values():
            pm.unregister(plugin)


# ----------------------------------------------------------------------------- the manager


def test_builtins_are_registered_as_ordinary_plugins(pm: pluggy.PluginManager) -> None:
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(BUILTIN_PLUGINS) <= names
    assert set(venue_specs(pm)) == BUILTIN_VENUES
    assert [s.name for s in market_sources(pm)] == [
        "sim.pools",
        "uniswap_v3.pools",
        "clob.books",
        "clob_a.books",
        "clob_b.books",
    ]
    assert set(strategy_specs(pm)) == {"dca", "momentum"}
    assert risk_check_specs(pm) == {}


def test_installed_entry_points_are_not_loaded_under_pytest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        SepPluginManager, "load_entry_points", lambda self, group="sep": calls.append(group) or 0
    )
    make_plugin_manager()
    assert calls == []
    make_plugin_manager(load_entrypoints=True)
    assert calls == ["sep"]


def test_a_builtins_misspelt_hook_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("sep_test_typo_plugin")

    @hookimpl
    def sep_register_venuez(register: Callable[[VenueSpec], None]) -> None:
        raise AssertionError("never called")

    module.sep_register_venuez = sep_register_venuez  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(loading_module, "BUILTIN_PLUGINS", (*BUILTIN_PLUGINS, module.__name__))
    with pytest.raises(pluggy.PluginValidationError, match="sep_register_venuez"):
        make_plugin_manager(load_entrypoints=False)


def test_registered_plugins_add_a_venue_a_strategy_and_a_risk_check(
    with_test_plugins: pluggy.PluginManager,
) -> None:
    assert set(venue_specs(with_test_plugins)) == {*BUILTIN_VENUES, "paper"}
    assert venue_specs(with_test_plugins)["paper"].config_model is PaperConfig
    assert set(strategy_specs(with_test_plugins)) == {"dca", "momentum", "every_interval"}
    assert set(risk_check_specs(with_test_plugins)) == {"max_amount"}


def test_unregistering_removes_the_venue(pm: pluggy.PluginManager) -> None:
    plugin = PaperPlugin()
    pm.register(plugin, name="test-paper")
    pm.unregister(plugin)
    assert set(venue_specs(pm)) == BUILTIN_VENUES


@pytest.mark.parametrize(
    ("collect", "name", "first"),
    [
        (venue_specs, "sim", "plugins.sim_venue"),
        (strategy_specs, "every_interval", "test-strategy"),
        (risk_check_specs, "max_amount", "test-risk"),
    ],
    ids=["venue", "strategy", "risk-check"],
)
def test_a_name_registered_twice_names_both_plugins(
    with_test_plugins: pluggy.PluginManager, collect: Callable[[Any], Any], name: str, first: str
) -> None:
    plugin = ImpostorPlugin()
    with_test_plugins.register(plugin, name="test-impostor")
    try:
        with pytest.raises(PluginError) as info:
            collect(with_test_plugins)
        message = str(info.value)
        assert repr(name) in message
        assert repr(first) in message
        assert "'test-impostor'" in message
    finally:
        with_test_plugins.unregister(plugin)


def test_a_spec_of_the_wrong_type_is_an_error_naming_the_plugin(pm: pluggy.PluginManager) -> None:
    class Confused:
        @hookimpl
        def sep_register_strategies(self, register: Callable[[Any], None]) -> None:
            register(VenueSpec(name="x", config_model=PaperConfig, factory=paper_factory))

    pm.register(Confused(), name="test-confused")
    try:
        with pytest.raises(PluginError, match=r"'test-confused'.*not a StrategySpec"):
            strategy_specs(pm)
    finally:
        pm.unregister(name="test-confused")


# ----------------------------------------------------------------------------- build_venues


def test_build_venues_from_the_repository_topology(tmp_path: Path) -> None:
    venues = build_venues(TOPOLOGY, tmp_path)
    assert set(venues) == {"sim", "uniswap_v3"}
    sim = venues["sim"]
    assert isinstance(sim, SimVenue)
    assert isinstance(sim, Venue)  # the runtime-checkable protocol
    assert len(sim.config.pools) == len(TOPOLOGY.plugins.venues["sim"].config["pools"])


def test_paper_mode_builds_a_paper_twin_in_place_of_each_live_venue(tmp_path: Path) -> None:
    venues = build_venues(TOPOLOGY.with_mode("paper"), tmp_path)
    assert set(venues) == {"sim", "uniswap_v3"}  # the names intents see do not change
    twin = venues["uniswap_v3"]
    assert isinstance(twin, PaperTwinVenue)
    assert isinstance(twin, PaperTwin)
    assert twin.name == "uniswap_v3"
    # The live venue is kept for its market data, built read-only: it sends nothing.
    assert isinstance(twin.live, UniswapV3Venue)
    assert twin.live._context.read_only
    assert twin.live._context.data_dir == tmp_path / "venues" / "uniswap_v3"
    assert type(venues["sim"]) is SimVenue  # simulated already: as configured
    assert not (tmp_path / "venues").exists()  # factories do no I/O


def test_live_mode_builds_the_live_venues_as_configured(tmp_path: Path) -> None:
    venues = build_venues(TOPOLOGY.with_mode("live"), tmp_path)
    live = venues["uniswap_v3"]
    assert isinstance(live, UniswapV3Venue)
    assert not isinstance(live, PaperTwin)
    assert not live._context.read_only


async def test_a_read_only_live_venue_refuses_to_submit(tmp_path: Path) -> None:
    twin = build_venues(TOPOLOGY.with_mode("paper"), tmp_path)["uniswap_v3"]
    assert isinstance(twin, PaperTwinVenue)
    step = ExecutionStep(
        step_id="s",
        venue="uniswap_v3",
        mode=SwapMode.EXACT_IN,
        legs=(
            RouteLeg(
                pool_id="p",
                venue="uniswap_v3",
                token_in="WETH",
                token_out="USDC",
                amount_in=0,
                amount_out=0,
            ),
        ),
        asset_in="WETH",
        asset_out="USDC",
        amount_in=Decimal(1),
        min_out=Decimal(0),
        amount_out=Decimal(0),
        max_in=Decimal(1),
    )
    with pytest.raises(StepRejected) as refused:
        await twin.live.submit(step)
    assert refused.value.reason == "read_only"


def test_paper_mode_without_a_twin_maker_is_an_error(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    pm.unregister(name="plugins.sim_venue")
    topology = topology_with(venues={"uniswap_v3": {"config": {}}}).with_mode("paper")
    with pytest.raises(PluginError, match="paper twins"):
        build_venues(topology, tmp_path, pm)


def test_build_venues_hands_each_venue_its_own_data_dir_and_the_assets(
    tmp_path: Path, with_test_plugins: pluggy.PluginManager
) -> None:
    topology = topology_with(venues={"paper": {"config": {"spread_bps": 7}}})
    venues = build_venues(topology, tmp_path, with_test_plugins)
    paper = venues["paper"]
    assert isinstance(paper, PaperVenue)
    assert paper.config.spread_bps == 7
    assert paper.context.data_dir == tmp_path / "venues" / "paper"
    assert set(paper.context.assets) == {a.symbol for a in TOPOLOGY.assets}
    assert not (tmp_path / "venues").exists()  # factories do no I/O


def test_disabled_venue_is_not_built(tmp_path: Path) -> None:
    topology = topology_with(venues={"sim": {"enabled": False, "config": {}}})
    assert build_venues(topology, tmp_path) == {}


def test_unknown_venue_in_the_topology(tmp_path: Path, pm: pluggy.PluginManager) -> None:
    topology = topology_with(venues={"kraken": {"config": {}}})
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path, pm)
    ((path, message),) = info.value.problems
    assert path == "plugins.venues.kraken"
    assert "'kraken'" in message
    assert "sim" in message


def test_venue_config_errors_name_their_yaml_path(
    tmp_path: Path, with_test_plugins: pluggy.PluginManager
) -> None:
    topology = topology_with(venues={"paper": {"config": {"spread_bps": "wide", "colour": "red"}}})
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path, with_test_plugins)
    paths = {p for p, _ in info.value.problems}
    assert paths == {"plugins.venues.paper.config.spread_bps", "plugins.venues.paper.config.colour"}


def test_sim_config_errors_name_their_yaml_path(tmp_path: Path) -> None:
    config = TOPOLOGY.plugins.venues["sim"].config
    pools = [dict(p) for p in config["pools"]]
    pools[1]["fee"] = 1_000_000
    topology = topology_with(venues={"sim": {"config": {**config, "pools": pools}}})
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path)
    # The pool is named by its pool_id, as a person finds it in topology.yaml.
    assert [p for p, _ in info.value.problems] == [
        f"plugins.venues.sim.config.pools[{pools[1]['pool_id']}].fee"
    ]


def test_a_worker_does_not_start_on_a_strategy_or_risk_check_its_plugin_refuses(
    tmp_path: Path, with_test_plugins: pluggy.PluginManager
) -> None:
    """build_venues is what a worker calls first: it checks every plugin section, and
    reports every problem at once."""
    topology = topology_with(
        strategies={"every_interval": {"config": {"interval_s": "often"}}, "grid": {"config": {}}},
        risk_checks={
            "max_amount": {"config": {}},
            "off": {"enabled": False, "config": {"anything": 1}},
        },
    )
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path, with_test_plugins)
    problems = dict(info.value.problems)
    assert set(problems) == {
        "plugins.strategies.every_interval.config.interval_s",
        "plugins.strategies.grid",
        "plugins.risk_checks.max_amount.config.max_amount",
    }
    assert "no installed plugin provides strategy 'grid'" in problems["plugins.strategies.grid"]
    assert "every_interval" in problems["plugins.strategies.grid"]  # what is installed


# ----------------------------------------------------------------- risk checks, strategies


def test_build_risk_checks_builds_what_the_topology_enables(
    with_test_plugins: pluggy.PluginManager,
) -> None:
    assert build_risk_checks(TOPOLOGY, with_test_plugins) == ()
    topology = topology_with(risk_checks={"max_amount": {"config": {"max_amount": 10}}})
    (check,) = build_risk_checks(topology, with_test_plugins)
    assert isinstance(check, MaxAmount)
    assert check.limit == 10
    assert check.context.limits == TOPOLOGY.risk
    assert set(check.context.assets) == {a.symbol for a in TOPOLOGY.assets}


def test_build_strategies_hands_each_its_id_and_own_data_dir(
    tmp_path: Path, with_test_plugins: pluggy.PluginManager
) -> None:
    topology = topology_with(
        strategies={"every_interval": {"config": {"interval_s": 60}}, "off": {"enabled": False}}
    )
    strategies = build_strategies(topology, tmp_path, with_test_plugins)
    strategy = strategies["every_interval"]
    assert isinstance(strategy, EveryInterval)
    assert list(strategies) == ["every_interval"]
    assert strategy.config.interval_s == 60
    assert strategy.context.strategy_id == "every_interval"
    assert strategy.context.data_dir == tmp_path / "strategies" / "every_interval"
    assert not (tmp_path / "strategies").exists()  # factories do no I/O


def test_check_plugins_returns_each_section_configured(
    with_test_plugins: pluggy.PluginManager,
) -> None:
    topology = topology_with(strategies={"every_interval": {"config": {"interval_s": 5}}})
    sections = check_plugins(topology, with_test_plugins)
    assert [c.name for c in sections.venues] == ["uniswap_v3", "sim"]
    assert [(c.name, c.config.model_dump()) for c in sections.strategies] == [
        ("every_interval", {"interval_s": 5, "amount": "1"})
    ]
    assert sections.risk_checks == []


def test_a_factory_that_makes_something_else_is_an_error_naming_it(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    class Sloppy:
        @hookimpl
        def sep_register_strategies(self, register: Callable[[StrategySpec], None]) -> None:
            register(StrategySpec(name="sloppy", config_model=PaperConfig, factory=paper_factory))

        @hookimpl
        def sep_register_risk_checks(self, register: Callable[[RiskCheckSpec], None]) -> None:
            register(RiskCheckSpec(name="sloppy", config_model=PaperConfig, factory=paper_factory))

    pm.register(Sloppy(), name="test-sloppy")
    try:
        topology = topology_with(strategies={"sloppy": {}}, risk_checks={"sloppy": {}})
        with pytest.raises(PluginError, match="strategy 'sloppy': its factory made"):
            build_strategies(topology, tmp_path, pm)
        with pytest.raises(PluginError, match="risk check 'sloppy': its factory made"):
            build_risk_checks(topology, pm)
    finally:
        pm.unregister(name="test-sloppy")
