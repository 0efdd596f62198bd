"""Loading installed plugins one by one: one that fails is recorded by name and left out, the
rest load, and a topology that needs it fails to start with it in the message.

The installed distributions are faked (``importlib.metadata.distributions``) and the plugin
modules put in ``sys.modules`` for the test only: nothing installed is ever loaded."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from plugin_support import BUILTIN_VENUES, PaperConfig, paper_factory, topology_with

from pipeline.plugins import RiskCheckSpec, VenueSpec, build_venues, hookimpl, venue_specs
from pipeline.plugins.loading import Origin, builtin_origin, make_plugin_manager
from pipeline.topology import TopologyError


@dataclass
class FakeDistribution:
    name: str
    version: str
    eps: list[importlib.metadata.EntryPoint] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, str]:
        return {"name": self.name}

    @property
    def entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return self.eps


def plugin_module(name: str, **hooks: Callable[..., None]) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def registers_paper(register: Callable[[VenueSpec], None]) -> None:
    register(VenueSpec(name="paper", config_model=PaperConfig, factory=paper_factory))


def raises(register: Callable[[Any], None]) -> None:
    raise RuntimeError("no licence key")


def registers_a_string(register: Callable[[Any], None]) -> None:
    register("max_amount")


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``installed(dist_name, {entry point: module or import path})`` fakes an installation."""
    dists: list[FakeDistribution] = []
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))

    def install(dist: str, plugins: dict[str, types.ModuleType | str]) -> None:
        eps = []
        for ep_name, module in plugins.items():
            if isinstance(module, types.ModuleType):
                monkeypatch.setitem(sys.modules, module.__name__, module)
                module = module.__name__
            eps.append(importlib.metadata.EntryPoint(ep_name, module, "sep"))
        eps.append(importlib.metadata.EntryPoint("other", "json", "console_scripts"))
        dists.append(FakeDistribution(dist, "1.2.3", eps))

    return install


def test_an_installed_plugin_loads_with_its_origin(installed: Callable[..., None]) -> None:
    installed(
        "sep-paper", {"paper": plugin_module("sep_test_paper", sep_register_venues=registers_paper)}
    )
    pm = make_plugin_manager(load_entrypoints=True)
    assert "paper" in venue_specs(pm)
    assert pm.origins["paper"] == Origin("sep-paper", "1.2.3", "paper = sep_test_paper")
    assert pm.origins["plugins.sim_venue"] == builtin_origin()
    assert pm.failures == []


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        ("sep_test_not_installed_module", "ModuleNotFoundError"),
        (
            plugin_module("sep_test_typo", sep_register_venuez=registers_paper),
            "sep_register_venuez",
        ),
        (plugin_module("sep_test_raises", sep_register_risk_checks=raises), "no licence key"),
        (
            plugin_module("sep_test_string", sep_register_risk_checks=registers_a_string),
            "not a RiskCheckSpec",
        ),
    ],
    ids=["import-error", "misspelt-hook", "hook-raises", "wrong-spec-type"],
)
def test_a_plugin_that_fails_to_load_is_reported_by_name_and_the_rest_load(
    installed: Callable[..., None], plugin: types.ModuleType | str, error: str
) -> None:
    installed("sep-broken", {"broken": plugin})
    installed(
        "sep-paper", {"paper": plugin_module("sep_test_paper", sep_register_venues=registers_paper)}
    )
    pm = make_plugin_manager(load_entrypoints=True)
    (failure,) = pm.failures
    assert failure.name == "broken"
    assert failure.origin.distribution == "sep-broken"
    assert error in failure.error
    assert "plugin 'broken' (sep-broken 1.2.3, entry point broken = " in str(failure)
    assert pm.get_plugin("broken") is None
    assert set(venue_specs(pm)) == {*BUILTIN_VENUES, "paper"}  # the rest loaded
    pm.check_pending()


def test_a_topology_that_uses_a_plugin_that_failed_fails_to_start_saying_why(
    installed: Callable[..., None], tmp_path: Path
) -> None:
    installed("sep-kraken", {"kraken": "sep_test_kraken_not_importable"})
    pm = make_plugin_manager(load_entrypoints=True)
    with pytest.raises(TopologyError) as info:
        build_venues(topology_with(venues={"kraken": {"config": {}}}), tmp_path, pm)
    ((path, message),) = info.value.problems
    assert path == "plugins.venues.kraken"
    assert "no installed plugin provides venue 'kraken'" in message
    assert "plugin 'kraken' (sep-kraken 1.2.3" in message
    assert "ModuleNotFoundError" in message
    # A topology that does not use it starts.
    assert set(build_venues(topology_with(venues={}), tmp_path, pm)) == set()


def test_a_risk_check_spec_from_an_installed_plugin(installed: Callable[..., None]) -> None:
    def registers_check(register: Callable[[RiskCheckSpec], None]) -> None:
        register(RiskCheckSpec(name="noop", config_model=PaperConfig, factory=paper_factory))

    installed(
        "sep-noop",
        {"noop": plugin_module("sep_test_noop", sep_register_risk_checks=registers_check)},
    )
    pm = make_plugin_manager(load_entrypoints=True)
    assert pm.failures == []
    assert pm.origins["noop"].distribution == "sep-noop"
