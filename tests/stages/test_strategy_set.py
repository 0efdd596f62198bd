"""What should run: the topology's strategies, then the control plane's changes on top."""

from __future__ import annotations

from typing import Any

from pipeline.models.control import StrategyChanged
from pipeline.stages.strategy_set import strategy_ids_in, wanted_strategies
from pipeline.topology import Topology, load_topology

DCA = {"asset": "WETH", "quote": "USDC", "amount": "100", "interval_ms": 60_000}


def topology(strategies: dict[str, Any]) -> Topology:
    data = load_topology().model_dump(by_alias=True)
    data["plugins"]["strategies"] = strategies
    return Topology.model_validate(data)


def change(sid: str, enabled: bool, **kw: Any) -> StrategyChanged:
    return StrategyChanged(strategy_id=sid, enabled=enabled, actor="ops", reason="why", **kw)


def test_the_topology_alone_decides_without_changes() -> None:
    wanted = wanted_strategies(
        topology(
            {
                "dca": {"config": DCA},
                "dca-slow": {"plugin": "dca", "enabled": False, "config": DCA},
            }
        ),
        {},
    )
    assert {k: (w.plugin, w.enabled, w.source) for k, w in wanted.items()} == {
        "dca": ("dca", True, "topology"),
        "dca-slow": ("dca", False, "topology"),
    }


def test_a_change_wins_and_keeps_the_topology_config_unless_it_carries_one() -> None:
    top = topology({"dca": {"config": DCA}})
    (off,) = wanted_strategies(top, {"dca": change("dca", False)}).values()
    assert (off.enabled, off.config, off.source, off.changed_by) == (False, DCA, "control", "ops")
    new = {**DCA, "amount": "5"}
    (on,) = wanted_strategies(top, {"dca": change("dca", True, config=new)}).values()
    assert (on.enabled, on.config, on.plugin) == (True, new, "dca")


def test_a_change_may_add_a_strategy_the_topology_lacks() -> None:
    wanted = wanted_strategies(
        topology({}), {"btc": change("btc", True, plugin="dca", config=DCA), "x": change("x", True)}
    )
    assert (wanted["btc"].plugin, wanted["btc"].config) == ("dca", DCA)
    assert (wanted["x"].plugin, wanted["x"].config) == ("x", {})  # its id names the plugin


def test_strategy_ids_come_from_strategy_keys_only() -> None:
    keys = ["kill/global", "strategy/dca", "limits/dca", "strategy/a/b"]
    assert strategy_ids_in(keys) == ["dca", "a/b"]
