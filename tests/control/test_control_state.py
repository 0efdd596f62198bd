"""ControlState: the latest change per key by seq, and what the kill switch, limits and
strategy switches mean."""

from __future__ import annotations

from pipeline.control import keys
from pipeline.control.publish import control_event
from pipeline.control.state import ControlState
from pipeline.models.base import WireModel
from pipeline.models.control import KillSwitchChanged, RiskLimitsChanged, StrategyChanged
from pipeline.models.events import Event


def change(key: str, event_type: str, payload: WireModel, seq: int, at_ms: int = 1_000) -> Event:
    return control_event(key, event_type, payload, seq, at_ms + seq)


def kill(scope: str, seq: int, *, engaged: bool = True) -> Event:
    payload = KillSwitchChanged(scope=scope, actor="ops", reason="test")
    kind = "control.killed" if engaged else "control.resumed"
    return change(keys.kill_key(scope), kind, payload, seq)


def test_the_newest_seq_of_a_key_wins_whatever_the_order_read() -> None:
    state = ControlState()
    engaged, resumed = kill("global", 1), kill("global", 2, engaged=False)
    assert state.apply(resumed)
    assert not state.apply(engaged)  # older: a redelivered record changes nothing
    assert not state.apply(resumed)  # the same again
    assert state.killed(None) is None
    assert state.seq(keys.kill_key("global")) == 2
    assert state.version == 1


def test_a_global_kill_covers_every_strategy_and_a_strategy_kill_only_its_own() -> None:
    state = ControlState()
    state.apply(kill(keys.strategy_scope("dca-1"), 1))
    killed = state.killed("dca-1")
    assert killed is not None
    assert killed.scope == "strategy:dca-1"
    assert state.killed("other") is None
    assert state.killed(None) is None
    state.apply(kill("global", 1))
    assert (k := state.killed("other")) is not None
    assert k.scope == "global"
    assert (k := state.killed("dca-1")) is not None
    assert k.scope == "global"


def test_limits_are_the_defaults_then_the_strategys_own_on_top() -> None:
    state = ControlState()
    assert state.limits("s") == {}
    defaults = RiskLimitsChanged(
        strategy_id="*",
        limits={"max_open_intents": "10", "max_daily_notional": "1e6"},
        actor="ops",
        reason="desk limits",
    )
    own = RiskLimitsChanged(
        strategy_id="s", limits={"max_open_intents": "3"}, actor="ops", reason="new strategy"
    )
    state.apply(change(keys.limits_key("*"), "risk.limits_changed", defaults, 1))
    state.apply(change(keys.limits_key("s"), "risk.limits_changed", own, 1))
    assert state.limits("s") == {"max_open_intents": "3", "max_daily_notional": "1e6"}
    assert state.limits("t") == {"max_open_intents": "10", "max_daily_notional": "1e6"}


def test_a_strategy_switch_is_unknown_until_changed_then_follows_the_latest_change() -> None:
    state = ControlState()
    assert state.strategy_enabled("dca") is None
    off = StrategyChanged(strategy_id="dca", enabled=False, actor="ops", reason="pause")
    state.apply(change(keys.strategy_key("dca"), "strategy.disabled", off, 1))
    assert state.strategy_enabled("dca") is False
    tuned = StrategyChanged(
        strategy_id="dca", enabled=False, config={"amount": "5"}, actor="ops", reason="smaller"
    )
    state.apply(change(keys.strategy_key("dca"), "strategy.configured", tuned, 2))
    assert state.strategy_enabled("dca") is False
    assert (s := state.strategy("dca")) is not None
    assert s.config == {"amount": "5"}


def test_a_change_event_id_depends_on_key_seq_and_time() -> None:
    one = kill("global", 1)
    assert one == kill("global", 1)
    assert one.event_id != kill("global", 2).event_id
    assert one.correlation_id == "kill/global"


def test_any_killed_follows_every_change_of_each_state() -> None:
    control, other = ControlState(), ControlState()
    assert not control.any_killed()
    control.apply(kill(keys.strategy_scope("s1"), 1))
    assert control.any_killed()  # the version moved: asked again
    assert not other.any_killed()  # another state: its own answer
    assert control.any_killed()
    control.apply(kill(keys.strategy_scope("s1"), 2, engaged=False))
    assert not control.any_killed()
    control.apply(kill("global", 1))
    assert control.any_killed()
