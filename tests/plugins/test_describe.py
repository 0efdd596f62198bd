"""What ``sep plugins`` reports: each plugin's origin, registrations and use; the problems."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from plugin_support import TOPOLOGY, PaperConfig, RiskPlugin, paper_factory, topology_with

from pipeline.plugins import VenueSpec, hookimpl
from pipeline.plugins.describe import describe_plugins, plugin_report
from pipeline.plugins.loading import LoadFailure, Origin, SepPluginManager, make_plugin_manager


@pytest.fixture
def pm() -> Iterator[SepPluginManager]:
    manager = make_plugin_manager(load_entrypoints=False)
    manager.register(RiskPlugin(), name="test-risk")
    manager.origins["test-risk"] = Origin("sep-max-amount", "0.3.0", "test-risk = sep_max_amount")
    manager.failures.append(
        LoadFailure(
            "broken",
            Origin("sep-broken", "1.0", "broken = sep_broken"),
            "ModuleNotFoundError: No module named 'sep_broken'",
        )
    )
    try:
        yield manager
    finally:
        manager.unregister(name="test-risk")


def test_each_plugin_with_origin_registrations_and_use(pm: SepPluginManager) -> None:
    topology = topology_with(risk_checks={"max_amount": {"config": {"max_amount": 5}}})
    info = {p.name: p for p in describe_plugins(pm, topology)}
    sim = info["plugins.sim_venue"]
    assert (sim.source, sim.venues, sim.used) == (
        "built-in",
        ("sim",),
        ("venues.sim", "market_sources.sim.pools"),
    )
    assert sim.distribution == pm.origins["plugins.sim_venue"].distribution
    uniswap = info["plugins.uniswap_v3"]
    assert uniswap.market_sources == ("uniswap_v3.pools",)
    assert uniswap.used == ("venues.uniswap_v3", "market_sources.uniswap_v3.pools")
    risk = info["test-risk"]
    assert (risk.source, risk.distribution, risk.version) == (
        "entry point",
        "sep-max-amount",
        "0.3.0",
    )
    assert risk.risk_checks == ("max_amount",)
    assert risk.used == ("risk_checks.max_amount",)
    broken = info["broken"]
    assert (broken.source, broken.distribution) == ("failed", "sep-broken")
    assert "No module named 'sep_broken'" in (broken.error or "")
    assert list(info)[-1] == "broken"


def test_nothing_is_used_without_a_topology_or_when_disabled(pm: SepPluginManager) -> None:
    assert all(p.used == () for p in describe_plugins(pm))
    topology = topology_with(venues={"sim": {"enabled": False}})
    info = {p.name: p for p in describe_plugins(pm, topology)}
    assert info["plugins.sim_venue"].used == ()
    assert info["test-risk"].used == ()


def test_a_plugin_registered_by_hand(pm: SepPluginManager) -> None:
    class Hand:
        @hookimpl
        def sep_register_venues(self, register: Callable[[VenueSpec], None]) -> None:
            register(VenueSpec(name="paper", config_model=PaperConfig, factory=paper_factory))

    pm.register(Hand(), name="test-hand")
    try:
        hand = {p.name: p for p in describe_plugins(pm)}["test-hand"]
    finally:
        pm.unregister(name="test-hand")
    assert (hand.source, hand.distribution, hand.venues) == ("registered", None, ("paper",))


def test_the_report_names_conflicts_and_what_the_topology_asks_in_vain(
    pm: SepPluginManager,
) -> None:
    assert plugin_report(pm, TOPOLOGY).problems == []
    topology = topology_with(risk_checks={"max_amount": {"config": {}}, "velocity": {}})
    problems = plugin_report(pm, topology).problems
    assert len(problems) == 2
    assert problems[0].startswith("topology.yaml plugins.risk_checks.max_amount.config.max_amount")
    assert "no installed plugin provides risk check 'velocity'" in problems[1]
    assert "plugin 'broken'" in problems[1]  # it may be the one that would have

    class Impostor:
        @hookimpl
        def sep_register_venues(self, register: Callable[[VenueSpec], None]) -> None:
            register(VenueSpec(name="sim", config_model=PaperConfig, factory=paper_factory))

    pm.register(Impostor(), name="test-impostor")
    try:
        (problem,) = plugin_report(pm, TOPOLOGY).problems
    finally:
        pm.unregister(name="test-impostor")
    assert "'sim' registered by both 'plugins.sim_venue' and 'test-impostor'" in problem
