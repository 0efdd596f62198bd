"""``sep plugins``: the table, the JSON, and the exit status (the manager is the tests' own,
with a test plugin registered by hand: installed entry points are never loaded)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from pipeline.cli.main import main
from pipeline.cli.plugins_cmd import render_plugins
from pipeline.plugins import hookimpl
from pipeline.plugins import manager as manager_module
from pipeline.plugins.describe import PluginInfo, PluginReport
from pipeline.plugins.loading import Origin, SepPluginManager, make_plugin_manager
from pipeline.plugins.risk import RiskCheckContext, RiskCheckSpec
from pipeline.topology.loader import DEFAULT_PATH


class NoConfig(BaseModel):
    pass


def never_built(config: BaseModel, context: RiskCheckContext) -> Any:
    raise AssertionError("sep plugins builds nothing")


class CheckPlugin:
    @hookimpl
    def sep_register_risk_checks(self, register: Callable[[RiskCheckSpec], None]) -> None:
        register(RiskCheckSpec(name="velocity", config_model=NoConfig, factory=never_built))


@pytest.fixture
def pm(monkeypatch: pytest.MonkeyPatch) -> Iterator[SepPluginManager]:
    manager = make_plugin_manager(load_entrypoints=False)
    manager.register(CheckPlugin(), name="velocity")
    manager.origins["velocity"] = Origin("sep-velocity", "2.0.1", "velocity = sep_velocity")
    monkeypatch.setattr(manager_module, "make_plugin_manager", lambda: manager)
    try:
        yield manager
    finally:
        manager.unregister(name="velocity")


def test_the_table_lists_each_plugin(
    pm: SepPluginManager, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "PLUGIN",
        "VERSION",
        "DISTRIBUTION",
        "SOURCE",
        "REGISTERS",
        "USED",
        "BY",
        "THE",
        "TOPOLOGY",
    ]
    velocity = next(line for line in lines if line.startswith("velocity "))
    assert velocity.split() == [
        "velocity",
        "2.0.1",
        "sep-velocity",
        "entry",
        "point",
        "risk",
        "checks:",
        "velocity",
        "no",
    ]
    sim = next(line for line in lines if line.startswith("plugins.sim_venue "))
    assert "venues: sim" in sim
    assert sim.endswith("venues.sim, market_sources.sim.pools")
    assert lines[-1] == "no problems"


def test_json_and_a_problem_exits_1(
    pm: SepPluginManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["velocity"]["risk_checks"] == ["velocity"]
    assert by_name["velocity"]["distribution"] == "sep-velocity"
    assert by_name["velocity"]["used"] == []
    assert data["problems"] == []

    topology = yaml.safe_load(DEFAULT_PATH.read_text())
    topology["plugins"]["risk_checks"] = {"velocity": {"config": {}}, "denylist": {}}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(topology))
    assert main(["plugins", "--json", "--topology", str(path)]) == 1
    data = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["velocity"]["used"] == ["risk_checks.velocity"]
    (problem,) = data["problems"]
    assert problem.startswith("topology.yaml plugins.risk_checks.denylist: no installed plugin")


def test_render_shows_a_failure_and_the_problems() -> None:
    report = PluginReport(
        [PluginInfo("broken", "failed", "sep-broken", "1.0", error="ImportError: nope")],
        ["topology.yaml plugins.venues.kraken: no installed plugin provides venue 'kraken'"],
    )
    text = render_plugins(report)
    assert "failed to load: ImportError: nope" in text
    assert text.splitlines()[-1] == (
        "problem: topology.yaml plugins.venues.kraken: no installed plugin provides venue 'kraken'"
    )
