"""Limits: topology defaults, per-strategy overrides, run-time changes; errors name the rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.risk.limits import LimitError, parse_changes, resolve
from pipeline.topology import TopologyError, parse_topology
from pipeline.topology.loader import DEFAULT_PATH
from tests.risk.risk_support import TOPOLOGY

D = Decimal


def test_overrides_then_run_time_changes_on_top() -> None:
    risk = TOPOLOGY.risk.model_copy(
        update={
            "strategies": {"dca": TOPOLOGY.risk.limits.model_copy(update={"max_open_intents": 5})}
        }
    )
    assert resolve(risk, "other").max_open_intents == TOPOLOGY.risk.limits.max_open_intents
    assert resolve(risk, "dca").max_open_intents == 5
    changed = resolve(risk, "dca", {"max_open_intents": "7", "max_position": "none"})
    assert changed.max_open_intents == 7
    assert changed.max_position is None  # switched off at run time


def test_a_change_is_checked_before_it_is_published() -> None:
    assert parse_changes({"max_position": " 2.50E3 ", "halt_at_loss": "NONE"}) == {
        "max_position": "2500",
        "halt_at_loss": "none",
    }
    with pytest.raises(LimitError, match="max_positon: unknown rule"):
        parse_changes({"max_positon": "1"})
    with pytest.raises(LimitError, match=r"max_concentration: .*less than or equal to 1"):
        parse_changes({"max_concentration": "1.5"})


def test_an_inapplicable_run_time_change_leaves_the_topology_limits() -> None:
    # A drawdown share bigger than 1 cannot come from parse_changes; from an old record it
    # must not stop the worker: the topology's limits apply.
    limits = resolve(TOPOLOGY.risk, "s", {"max_concentration": "7"})
    assert limits == resolve(TOPOLOGY.risk, "s")


def test_topology_errors_name_the_yaml_path() -> None:
    text = DEFAULT_PATH.read_text()
    bad = text.replace(
        "  strategies: {}", "  strategies: {dca: {reduce_at_loss: '5000000', max_open_intents: -1}}"
    )
    assert bad != text
    with pytest.raises(TopologyError) as info:
        parse_topology(bad)
    paths = {path for path, _message in info.value.problems}
    assert "risk.strategies.dca.max_open_intents" in paths
    unordered = text.replace("  strategies: {}", "  strategies: {dca: {reduce_at_loss: '5000000'}}")
    with pytest.raises(TopologyError) as info:
        parse_topology(unordered)
    (problem,) = info.value.problems
    assert problem[0] == "risk.strategies.dca.reduce_at_loss"
    assert "REDUCING comes before HALTED" in problem[1]
