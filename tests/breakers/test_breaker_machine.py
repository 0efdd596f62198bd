"""The venue breaker's state machine: every transition, and the ones it refuses."""

from __future__ import annotations

import pytest

from pipeline.breakers import machine
from pipeline.breakers.config import BreakerPolicy
from pipeline.models.breakers import BreakerState, VenueBreakerChanged

POLICY = BreakerPolicy(failures=3, cooldown_ms=1_000, probes=2)


def opened(at: int = 10_000) -> VenueBreakerChanged:
    return machine.trip(
        machine.initial("sim"),
        failures=3,
        last_reason="reverted: boom",
        now_ms=at,
        policy=POLICY,
        actor="execute",
        why="3 failures",
    )


def test_a_trip_opens_until_the_cool_down_and_counts_the_trips() -> None:
    state = opened()
    assert (state.state, state.previous, state.failures) == ("open", "closed", 3)
    assert (state.since_ms, state.retry_at_ms, state.trips) == (10_000, 11_000, 1)
    assert state.last_reason == "reverted: boom"
    assert not machine.cooled_down(state, 10_999, POLICY)
    assert machine.cooled_down(state, 11_000, POLICY)
    assert machine.probe_window_start(state) == 11_000


def test_half_open_only_after_the_cool_down_with_the_policy_s_probes() -> None:
    state = opened()
    with pytest.raises(machine.BreakerTransitionError, match="from open to half_open"):
        machine.half_open(state, now_ms=10_500, policy=POLICY, actor="plan", why="early")
    half = machine.half_open(state, now_ms=11_200, policy=POLICY, actor="plan", why="probing")
    assert (half.state, half.previous, half.probes, half.since_ms) == (
        "half_open",
        "open",
        2,
        11_200,
    )
    assert half.retry_at_ms is None
    assert machine.probe_window_start(half) == 11_200


def test_a_probe_s_success_closes_and_its_failure_reopens_with_a_new_cool_down() -> None:
    half = machine.half_open(opened(), now_ms=11_200, policy=POLICY, actor="plan", why="p")
    closed = machine.close(half, now_ms=11_300, last_reason="", actor="execute", why="filled")
    assert (closed.state, closed.previous, closed.failures, closed.probes) == (
        "closed",
        "half_open",
        0,
        0,
    )
    assert machine.probe_window_start(closed) is None
    again = machine.trip(
        half, failures=4, last_reason="reverted", now_ms=11_300, policy=POLICY, actor="e", why="p"
    )
    assert (again.state, again.previous, again.retry_at_ms, again.trips) == (
        "open",
        "half_open",
        12_300,
        2,
    )


def test_a_silent_half_open_round_may_start_again_after_a_cool_down() -> None:
    half = machine.half_open(opened(), now_ms=11_200, policy=POLICY, actor="plan", why="p")
    assert not machine.cooled_down(half, 12_199, POLICY)
    assert machine.cooled_down(half, 12_200, POLICY)
    again = machine.half_open(half, now_ms=12_200, policy=POLICY, actor="plan", why="again")
    assert (again.state, again.previous, again.since_ms) == ("half_open", "half_open", 12_200)


@pytest.mark.parametrize(
    ("start", "move"),
    [
        ("closed", "close"),
        ("open", "close"),
        ("open", "trip"),
        ("closed", "half_open"),
    ],
)
def test_transitions_outside_the_diagram_are_refused(start: str, move: str) -> None:
    state = machine.initial("sim") if start == "closed" else opened()
    moves = {
        "close": lambda: machine.close(state, now_ms=20_000, last_reason="", actor="a", why="w"),
        "trip": lambda: machine.trip(
            state, failures=1, last_reason="", now_ms=20_000, policy=POLICY, actor="a", why="w"
        ),
        "half_open": lambda: machine.half_open(
            state, now_ms=20_000, policy=POLICY, actor="a", why="w"
        ),
    }
    with pytest.raises(machine.BreakerTransitionError):
        moves[move]()


def test_the_payload_round_trips_on_the_wire_in_camel_case() -> None:
    state = opened()
    wire = state.to_wire()
    assert (wire["retryAtMs"], wire["lastReason"]) == (11_000, "reverted: boom")
    assert VenueBreakerChanged.model_validate(wire) == state
    assert wire["state"] == BreakerState.OPEN.value
