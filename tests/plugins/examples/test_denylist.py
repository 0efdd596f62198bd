"""The example third-party plugin (plugins/examples/denylist), in process: imported from its
source directory and registered by hand, like any test plugin (test_install.py installs it)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
import yaml

from pipeline.codec import decode_event
from pipeline.models.intent import Intent
from pipeline.plugins import build_risk_checks, risk_check_specs
from pipeline.plugins.loading import SepPluginManager, make_plugin_manager
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Record
from pipeline.stages.ingest import ingest_record
from pipeline.topology import Topology, TopologyError, parse_topology
from pipeline.topology.loader import DEFAULT_PATH

EXAMPLE = Path(__file__).resolve().parents[3] / "plugins" / "examples" / "denylist"


@pytest.fixture
def denylist(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    try:
        yield importlib.import_module("sep_denylist")
    finally:
        sys.modules.pop("sep_denylist", None)


@pytest.fixture
def pm(denylist: ModuleType) -> Iterator[SepPluginManager]:
    manager = make_plugin_manager(load_entrypoints=False)
    manager.register(denylist, name="denylist")
    try:
        yield manager
    finally:
        manager.unregister(name="denylist")


def topology(config: dict[str, Any]) -> Topology:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["plugins"]["risk_checks"] = {"denylist": {"config": config}}
    return parse_topology(yaml.safe_dump(data))


def intent(strategy: str, subject: str) -> Intent:
    body = submission(
        topology({"strategies": ["x"]}),
        "DISPOSE",
        subject,
        "USDC",
        "1",
        strategy_id=strategy,
        client_intent_id="c-1",
    )
    record = Record("sep.intents.submitted", 0, 0, 0, b"k", orjson.dumps(body))
    outcome = ingest_record(record, MemoryTable(), 1, topic="sep.intents.ingested")
    return Intent.model_validate(decode_event(outcome.outputs[0].value).payload["intent"])


def test_it_registers_one_risk_check(pm: SepPluginManager) -> None:
    assert set(risk_check_specs(pm)) == {"denylist"}


def test_it_refuses_listed_strategies_and_assets(pm: SepPluginManager) -> None:
    (check,) = build_risk_checks(topology({"strategies": ["rogue-bot"], "assets": ["WBTC"]}), pm)
    assert check.name == "denylist"
    breach = check.check(intent("rogue-bot", "WETH"), 0)
    assert breach is not None
    assert (breach.rule, breach.actual) == ("denylist", "rogue-bot")
    breach = check.check(intent("dca", "WBTC"), 0)
    assert breach is not None
    assert breach.message == "asset WBTC is on the denylist"
    assert check.check(intent("dca", "WETH"), 0) is None


@pytest.mark.parametrize(
    ("config", "path", "needle"),
    [
        (
            {"assets": ["WETH", "WETX"]},
            "plugins.risk_checks.denylist.config.assets[1]",
            "unknown asset 'WETX'",
        ),
        (
            {"strategies": ["a"], "venues": ["sim"]},
            "plugins.risk_checks.denylist.config.venues",
            "Extra inputs",
        ),
        ({}, "plugins.risk_checks.denylist.config", "lists nothing"),
    ],
    ids=["unknown-asset", "unknown-key", "empty"],
)
def test_its_config_errors_name_the_yaml_path(
    pm: SepPluginManager, config: dict[str, Any], path: str, needle: str
) -> None:
    with pytest.raises(TopologyError) as info:
        build_risk_checks(topology(config), pm)
    ((where, message),) = info.value.problems
    assert where == path
    assert needle in message
