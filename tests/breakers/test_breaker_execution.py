"""Execute's failure counting (``FailureWatch``): pure, one worker's view of step outcomes."""

from __future__ import annotations

from pipeline.breakers import machine
from pipeline.breakers.config import BreakersSpec
from pipeline.breakers.execution import FailureWatch, StepOutcome
from pipeline.models.breakers import VenueBreakerChanged

SPEC = BreakersSpec(failures=3, cooldown_ms=1_000, probes=1)


def failed(reason: str = "reverted: boom", planned_ms: int = 0) -> StepOutcome:
    return StepOutcome("sim", False, reason, planned_ms)


def filled(planned_ms: int = 0) -> StepOutcome:
    return StepOutcome("sim", True, "sim-01", planned_ms)


def test_the_third_consecutive_counted_failure_opens_the_breaker() -> None:
    watch = FailureWatch(SPEC)
    assert watch.observe(failed(), None, 1) is None
    assert watch.observe(failed(), None, 2) is None
    change = watch.observe(failed("unavailable: down"), None, 3)
    assert change is not None
    state, skip = change
    assert (state.state, state.failures, state.last_reason, skip) == (
        "open",
        3,
        "unavailable: down",
        1,
    )
    assert state.retry_at_ms == 1_003
    assert watch.run_of("sim") == 0  # counting starts again for the next trip


def test_a_fill_resets_the_run_and_ignored_reasons_neither_count_nor_reset() -> None:
    watch = FailureWatch(SPEC)
    for outcome in (failed(), failed(), filled(), failed(), failed()):
        assert watch.observe(outcome, None, 1) is None
    assert watch.run_of("sim") == 2
    assert watch.observe(failed("slippage: moved"), None, 1) is None
    assert watch.observe(failed("killed: global"), None, 1) is None
    assert watch.run_of("sim") == 2
    assert watch.observe(failed(), None, 1) is not None


def test_disabled_breakers_never_open() -> None:
    watch = FailureWatch(BreakersSpec(enabled=False, failures=1))
    assert watch.observe(failed(), None, 1) is None


def _open(at: int = 100) -> VenueBreakerChanged:
    return machine.trip(
        machine.initial("sim"),
        failures=3,
        last_reason="reverted",
        now_ms=at,
        policy=SPEC.policy("sim"),
        actor="execute",
        why="t",
    )


def test_outcomes_of_plans_made_before_the_probe_window_change_nothing() -> None:
    watch = FailureWatch(SPEC)
    state = _open(at=100)  # probes from 1_100
    assert watch.observe(failed(planned_ms=90), state, 500) is None
    assert watch.observe(filled(planned_ms=1_099), state, 1_200) is None
    half = machine.half_open(state, now_ms=1_200, policy=SPEC.policy("sim"), actor="p", why="p")
    assert watch.observe(filled(planned_ms=1_150), half, 1_300) is None


def test_a_probe_s_fill_closes_and_its_failure_reopens() -> None:
    state = _open(at=100)
    half = machine.half_open(state, now_ms=1_200, policy=SPEC.policy("sim"), actor="p", why="p")
    closing = FailureWatch(SPEC).observe(filled(planned_ms=1_200), half, 1_250)
    assert closing is not None
    assert (closing[0].state, closing[1]) == ("closed", 1)
    reopening = FailureWatch(SPEC).observe(failed(planned_ms=1_200), half, 1_250)
    assert reopening is not None
    assert (reopening[0].state, reopening[0].previous, reopening[0].trips) == (
        "open",
        "half_open",
        2,
    )
    assert reopening[0].retry_at_ms == 2_250


def test_a_probe_seen_before_the_planner_s_half_open_takes_the_seq_after_it() -> None:
    """The feed has not shown this worker the planner's half_open yet: the breaker still
    reads open, but a plan made after the cool-down can only be a probe."""
    change = FailureWatch(SPEC).observe(filled(planned_ms=1_150), _open(at=100), 1_200)
    assert change is not None
    state, skip = change
    assert (state.state, state.previous, skip) == ("closed", "half_open", 2)
