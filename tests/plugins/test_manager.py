"""The plugin manager, hermetically: test plugins are classes written here, unregistered after."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from pydantic import BaseModel, ConfigDict

from pipeline.plugins import hookimpl, venue_specs
from pipeline.plugins import manager as manager_module
from pipeline.plugins.manager import (
    BUILTIN_PLUGINS,
    PluginError,
    build_venues,
    describe_plugins,
    make_plugin_manager,
)
from pipeline.plugins.venue import Venue, VenueContext, VenueSpec
from pipeline.topology import Topology, TopologyError, load_topology
from plugins.sim_venue import SimVenue

TOPOLOGY = load_topology()


class PaperConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spread_bps: int = 5


class PaperVenue:
    """Just enough of a venue to be built; the manager never calls into it."""

    def __init__(self, config: PaperConfig, context: VenueContext) -> None:
        self.name = "paper"
        self.config = config
        self.context = context


def paper_factory(config: BaseModel, context: VenueContext) -> Any:
    assert isinstance(config, PaperConfig)
    return PaperVenue(config, context)


class PaperPlugin:
    @hookimpl
    def sep_register_venues(self, register: Callable[[VenueSpec], None]) -> None:
        register(VenueSpec(name="paper", config_model=PaperConfig, factory=paper_factory))


class ImpostorPlugin:
    """Registers a venue under a name the built-in sim plugin already uses."""

    @hookimpl
    def sep_register_venues(self, register: Callable[[VenueSpec], None]) -> None:
        register(VenueSpec(name="sim", config_model=PaperConfig, factory=paper_factory))


@pytest.fixture
def pm() -> pluggy.PluginManager:
    return make_plugin_manager(load_entrypoints=False)


@pytest.fixture
def with_paper(pm: pluggy.PluginManager) -> Iterator[pluggy.PluginManager]:
    plugin = PaperPlugin()
    pm.register(plugin, name="test-paper")
    try:
        yield pm
    finally:
        pm.unregister(plugin)


def topology_with(venues: dict[str, Any]) -> Topology:
    data = TOPOLOGY.model_dump(by_alias=True)
    data["plugins"]["venues"] = venues
    return Topology.model_validate(data)


# ----------------------------------------------------------------------------- the manager


def test_builtins_are_registered_as_ordinary_plugins(pm: pluggy.PluginManager) -> None:
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(BUILTIN_PLUGINS) <= names
    assert set(venue_specs(pm)) == {"sim", "uniswap_v3"}


def test_installed_entry_points_are_not_loaded_under_pytest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints",
                        lambda self, group, name=None: calls.append(group) or 0)
    make_plugin_manager()
    assert calls == []
    make_plugin_manager(load_entrypoints=True)
    assert calls == ["sep"]


def test_misspelt_hook_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("sep_test_typo_plugin")

    @hookimpl
    def sep_register_venuez(register: Callable[[VenueSpec], None]) -> None:
        raise AssertionError("never called")

    module.sep_register_venuez = sep_register_venuez  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(manager_module, "BUILTIN_PLUGINS", (*BUILTIN_PLUGINS, module.__name__))
    with pytest.raises(pluggy.PluginValidationError, match="sep_register_venuez"):
        make_plugin_manager(load_entrypoints=False)


def test_a_registered_plugin_adds_a_venue(with_paper: pluggy.PluginManager) -> None:
    specs = venue_specs(with_paper)
    assert set(specs) == {"sim", "paper", "uniswap_v3"}
    assert specs["paper"].config_model is PaperConfig


def test_unregistering_removes_the_venue(pm: pluggy.PluginManager) -> None:
    plugin = PaperPlugin()
    pm.register(plugin, name="test-paper")
    pm.unregister(plugin)
    assert set(venue_specs(pm)) == {"sim", "uniswap_v3"}


def test_duplicate_venue_name_names_both_plugins(pm: pluggy.PluginManager) -> None:
    plugin = ImpostorPlugin()
    pm.register(plugin, name="test-impostor")
    try:
        with pytest.raises(PluginError) as info:
            venue_specs(pm)
        message = str(info.value)
        assert "'sim'" in message
        assert "plugins.sim_venue" in message
        assert "test-impostor" in message
    finally:
        pm.unregister(plugin)


def test_describe_plugins_says_where_each_came_from(with_paper: pluggy.PluginManager) -> None:
    info = {p.name: p for p in describe_plugins(with_paper)}
    assert info["plugins.sim_venue"].source == "built-in"
    assert info["plugins.sim_venue"].venues == ("sim",)
    assert info["test-paper"].source == "registered"
    assert info["test-paper"].venues == ("paper",)


# ----------------------------------------------------------------------------- build_venues


def test_build_venues_from_the_repository_topology(tmp_path: Path) -> None:
    venues = build_venues(TOPOLOGY, tmp_path)
    assert set(venues) == {"sim", "uniswap_v3"}
    sim = venues["sim"]
    assert isinstance(sim, SimVenue)
    assert isinstance(sim, Venue)  # the runtime-checkable protocol
    assert len(sim.config.pools) == len(TOPOLOGY.plugins.venues["sim"].config["pools"])


def test_build_venues_hands_each_venue_its_own_data_dir_and_the_assets(
        tmp_path: Path, with_paper: pluggy.PluginManager) -> None:
    topology = topology_with({"paper": {"config": {"spread_bps": 7}}})
    venues = build_venues(topology, tmp_path, with_paper)
    paper = venues["paper"]
    assert isinstance(paper, PaperVenue)
    assert paper.config.spread_bps == 7
    assert paper.context.data_dir == tmp_path / "venues" / "paper"
    assert set(paper.context.assets) == {a.symbol for a in TOPOLOGY.assets}
    assert not (tmp_path / "venues").exists()  # factories do no I/O


def test_disabled_venue_is_not_built(tmp_path: Path) -> None:
    topology = topology_with({"sim": {"enabled": False, "config": {}}})
    assert build_venues(topology, tmp_path) == {}


def test_unknown_venue_in_the_topology(tmp_path: Path, pm: pluggy.PluginManager) -> None:
    topology = topology_with({"kraken": {"config": {}}})
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path, pm)
    ((path, message),) = info.value.problems
    assert path == "plugins.venues.kraken"
    assert "'kraken'" in message
    assert "sim" in message


def test_venue_config_errors_name_their_yaml_path(tmp_path: Path,
                                                  with_paper: pluggy.PluginManager) -> None:
    topology = topology_with({"paper": {"config": {"spread_bps": "wide", "colour": "red"}}})
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path, with_paper)
    paths = {p for p, _ in info.value.problems}
    assert paths == {"plugins.venues.paper.config.spread_bps",
                     "plugins.venues.paper.config.colour"}


def test_sim_config_errors_name_their_yaml_path(tmp_path: Path) -> None:
    config = TOPOLOGY.plugins.venues["sim"].config
    pools = [dict(p) for p in config["pools"]]
    pools[1]["fee"] = 1_000_000
    topology = topology_with({"sim": {"config": {**config, "pools": pools}}})
    with pytest.raises(TopologyError) as info:
        build_venues(topology, tmp_path)
    # The pool is named by its pool_id, as a person finds it in topology.yaml.
    assert [p for p, _ in info.value.problems] == [
        f"plugins.venues.sim.config.pools[{pools[1]['pool_id']}].fee"]
