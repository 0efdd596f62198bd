"""Planning a run-time strategy change: the whole config in force, validated first."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.models.control import StrategyChanged
from pipeline.strategy_admin import StrategyChangeError, plan_change, strategy_rows
from pipeline.topology import Topology, load_topology

DCA = {"asset": "WETH", "quote": "USDC", "amount": "100", "interval_ms": 60_000}


def topology() -> Topology:
    data = load_topology().model_dump(by_alias=True)
    data["plugins"]["strategies"] = {"dca": {"config": DCA}}
    return Topology.model_validate(data)


TOPOLOGY = topology()
WHO: dict[str, Any] = {"actor": "ops@desk", "reason": "test"}


def test_disable_carries_the_config_in_force() -> None:
    planned = plan_change(TOPOLOGY, {}, "disable", "dca", **WHO)
    assert (planned.key, planned.event_type) == ("strategy/dca", "strategy.disabled")
    assert (planned.payload.enabled, planned.payload.config, planned.payload.plugin) == (
        False,
        DCA,
        "dca",
    )


def test_configure_merges_into_the_latest_config_and_keeps_the_switch() -> None:
    off = plan_change(TOPOLOGY, {}, "configure", "dca", config={"amount": "250"}, **WHO)
    assert off.event_type == "strategy.configured"
    assert off.payload.config == {**DCA, "amount": "250"}
    assert off.payload.enabled is True
    current = {
        "dca": StrategyChanged(
            strategy_id="dca", enabled=False, config={**DCA, "amount": "250"}, **WHO
        )
    }
    again = plan_change(TOPOLOGY, current, "configure", "dca", config={"interval_ms": 5000}, **WHO)
    assert again.payload.config == {**DCA, "amount": "250", "interval_ms": 5000}
    assert again.payload.enabled is False  # configuring does not switch it on


def test_a_config_the_plugin_refuses_is_refused_before_publishing() -> None:
    with pytest.raises(StrategyChangeError) as info:
        plan_change(TOPOLOGY, {}, "configure", "dca", config={"amount": "-1"}, **WHO)
    ((path, message),) = info.value.problems
    assert path == "plugins.strategies.dca.config.amount"
    assert "greater than 0" in message


def test_a_new_strategy_needs_its_plugin_and_a_whole_config() -> None:
    with pytest.raises(StrategyChangeError, match="name its plugin"):
        plan_change(TOPOLOGY, {}, "enable", "dca-btc", **WHO)
    with pytest.raises(StrategyChangeError, match="interval_ms"):
        plan_change(
            TOPOLOGY, {}, "enable", "dca-btc", plugin="dca", config={"asset": "WBTC"}, **WHO
        )
    planned = plan_change(
        TOPOLOGY, {}, "enable", "dca-btc", plugin="dca", config={**DCA, "asset": "WBTC"}, **WHO
    )
    assert (planned.payload.plugin, planned.payload.config["asset"]) == ("dca", "WBTC")
    with pytest.raises(StrategyChangeError, match="no installed plugin provides strategy 'nope'"):
        plan_change(TOPOLOGY, {}, "enable", "x", plugin="nope", **WHO)


def test_disabling_an_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(StrategyChangeError, match=r"no strategy 'dac'.*\['dca'\]"):
        plan_change(TOPOLOGY, {}, "disable", "dac", **WHO)


def test_rows_show_the_topology_and_who_changed_what() -> None:
    current = {"dca": StrategyChanged(strategy_id="dca", enabled=False, **WHO)}
    (row,) = strategy_rows(TOPOLOGY, current)
    assert row == {
        "strategyId": "dca",
        "plugin": "dca",
        "enabled": False,
        "source": "control",
        "config": DCA,
        "changedBy": "ops@desk",
        "reason": "test",
    }
