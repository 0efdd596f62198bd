"""The risk picture from the stored control plane and the engine's usage report."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.control.keys import kill_key, limits_key, risk_key
from pipeline.control.publish import control_event
from pipeline.models.control import KillSwitchChanged, RiskLimitsChanged, RiskStateChanged
from pipeline.models.events import Event
from pipeline.risk.status import risk_status
from tests.risk.risk_support import TOPOLOGY


def stored(event: Event) -> dict[str, Any]:
    return event.to_wire()


def test_states_overrides_usage_and_kill_switches() -> None:
    halted = RiskStateChanged(
        scope="global",
        state="HALTED",
        previous="REDUCING",
        rule="halt_at_loss",
        message="global: loss",
        epoch_ms=1,
        pnl=Decimal(-5),
        actor="risk-engine",
        reason="loss",
    )
    everyone = RiskLimitsChanged(
        strategy_id="*", limits={"max_open_intents": "9"}, actor="a", reason="r"
    )
    mine = RiskLimitsChanged(
        strategy_id="dca", limits={"max_position": "none"}, actor="a", reason="r"
    )
    kill = KillSwitchChanged(scope="strategy:dca", actor="ops", reason="fat finger")
    control = {
        e.correlation_id: stored(e)
        for e in (
            control_event(risk_key("global"), "risk.state_changed", halted, 3, 1000),
            control_event(limits_key("*"), "risk.limits_changed", everyone, 1, 1000),
            control_event(limits_key("dca"), "risk.limits_changed", mine, 1, 1000),
            control_event(kill_key("strategy:dca"), "control.killed", kill, 1, 1000),
        )
    }
    usage = {"at": 7, "strategies": {"other": {"usage": {"openIntents": 1}}}, "marks": {}}
    status = risk_status(TOPOLOGY, control, usage)
    assert status["global"]["state"] == "HALTED"
    assert status["global"]["change"]["rule"] == "halt_at_loss"
    by_id = {s["strategyId"]: s for s in status["strategies"]}
    assert set(by_id) == {"dca", "other"}
    assert by_id["dca"]["limits"]["max_open_intents"] == "9"
    assert "max_position" not in by_id["dca"]["limits"]  # switched off at run time
    assert by_id["dca"]["overrides"] == {"max_open_intents": "9", "max_position": "none"}
    assert by_id["other"]["usage"] == {"openIntents": 1}
    assert by_id["other"]["state"] == "NORMAL"
    assert status["killSwitch"]["strategies"]["dca"]["reason"] == "fat finger"
    assert status["usageAt"] == 7


def test_nothing_stored_yet() -> None:
    status = risk_status(TOPOLOGY, {}, None)
    assert status["strategies"] == []
    assert status["global"]["state"] == "NORMAL"
    assert status["usageAt"] is None


def test_kill_switches_say_whether_engaged_and_cover_their_strategies() -> None:
    """A resumed switch is shown as resumed (not as a kill); the global switch covers every
    strategy; a strategy with its own engaged switch is listed even before it trades."""
    killed_everyone = KillSwitchChanged(scope="global", actor="ops", reason="incident")
    resumed = KillSwitchChanged(scope="strategy:dca", actor="ops", reason="fixed")
    quiet = KillSwitchChanged(scope="strategy:quiet", actor="ops", reason="drill")
    control = {
        e.correlation_id: stored(e)
        for e in (
            control_event(kill_key("strategy:dca"), "control.resumed", resumed, 2, 1000),
            control_event(kill_key("strategy:quiet"), "control.killed", quiet, 1, 1000),
        )
    }
    status = risk_status(TOPOLOGY, control, None)
    by_id = {s["strategyId"]: s for s in status["strategies"]}
    assert status["killSwitch"]["strategies"]["dca"]["engaged"] is False
    assert "dca" not in by_id  # resumed, never traded: nothing to show
    assert by_id["quiet"]["killed"]["scope"] == "strategy:quiet"
    assert by_id["quiet"]["state"] == "NORMAL"  # the breaker is another matter
    assert status["global"]["killed"] is None

    engaged = control_event(kill_key("global"), "control.killed", killed_everyone, 1, 2000)
    control[engaged.correlation_id] = stored(engaged)
    status = risk_status(TOPOLOGY, control, {"strategies": {"dca": {"usage": {}}}})
    by_id = {s["strategyId"]: s for s in status["strategies"]}
    assert status["global"]["killed"]["reason"] == "incident"
    assert status["killSwitch"]["global"]["engaged"] is True
    assert by_id["dca"]["killed"]["scope"] == "global"  # its own is resumed; global covers it
    assert by_id["quiet"]["killed"]["scope"] == "global"  # global first, as workers obey
