"""Execute's side of the venue breakers: count failures, publish what they cause.

Execute sees the outcome of every step it runs (``exec.step_filled`` / ``exec.step_failed``),
but one worker runs the plans of its own partitions only.  How the counts combine (a
deliberate, simple choice): **each execute worker counts consecutive counted failures per
venue among the steps it runs; the worker whose count reaches ``failures`` opens the
breaker.**  A fill seen by a worker resets that worker's count only.  Plans spread over the
partitions by intent id, so with W workers a venue that fails every step is opened after at
most W x (failures - 1) + 1 failures, and a venue failing one step in three never is.

Probe outcomes close or re-open a half-open breaker whichever worker sees them.  A probe is a
step whose plan was made in the probe window (``machine.probe_window_start``): the planner lets
no plan onto a non-closed venue before it.  When the window is known only from an open
breaker (this worker's feed has not shown the planner's ``half_open`` yet), the transition
takes the seq after the one the planner's event took.

Steps whose plans were made before the breaker opened, landing while it is open or half-open,
are not probes and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.breakers import machine
from pipeline.breakers.book import BreakerBook, ControlReader
from pipeline.breakers.config import BreakersSpec
from pipeline.models.breakers import BreakerState, VenueBreakerChanged
from pipeline.stages.base import Output

ACTOR = "execute"


@dataclass(frozen=True)
class StepOutcome:
    """One step's outcome on its venue, as execute reports it."""

    venue: str
    ok: bool
    reason: str
    """The ``exec.step_failed`` reason (``code: detail``); the order ref of a fill."""
    planned_ms: int
    """When the step's plan was made (the ``plan.created`` event's time)."""


class FailureWatch:
    """Pure: this worker's consecutive failures per venue -> the transition they cause."""

    def __init__(self, spec: BreakersSpec) -> None:
        self._spec = spec
        self._runs: dict[str, int] = {}

    def run_of(self, venue: str) -> int:
        return self._runs.get(venue, 0)

    def observe(
        self, outcome: StepOutcome, current: VenueBreakerChanged | None, now_ms: int
    ) -> tuple[VenueBreakerChanged, int] | None:
        """The breaker's next state and how many seqs past ``current`` it goes (1, or 2 when
        a planner's ``half_open`` must precede it unseen); ``None``: no transition."""
        if not self._spec.enabled:
            return None
        venue = outcome.venue
        if outcome.ok and (current is None or current.state is BreakerState.CLOSED):
            # Nearly every step: a success on a closed breaker only ends a run of failures
            # (the policy and the initial state are models built per call: ~12 us a step).
            self._runs[venue] = 0
            return None
        policy = self._spec.policy(venue)
        if not outcome.ok and not policy.counts(outcome.reason):
            return None  # the market's or the intent's doing, not the venue's
        state = current or machine.initial(venue)
        if state.state is BreakerState.CLOSED:
            if outcome.ok:
                self._runs[venue] = 0
                return None
            run = self._runs[venue] = self.run_of(venue) + 1
            if run < policy.failures:
                return None
            self._runs[venue] = 0
            return (
                machine.trip(
                    state,
                    failures=run,
                    last_reason=outcome.reason,
                    now_ms=now_ms,
                    policy=policy,
                    actor=ACTOR,
                    why=f"{run} consecutive failures of {venue!r} seen by one execute worker",
                ),
                1,
            )
        self._runs[venue] = 0
        window = machine.probe_window_start(state)
        if window is None or outcome.planned_ms < window:
            return None  # planned before the breaker opened: not a probe
        skip = 1
        if state.state is BreakerState.OPEN:
            # A probe of a round whose half_open this worker has not seen yet.
            state = machine.half_open(
                state,
                now_ms=outcome.planned_ms,
                policy=policy,
                actor="plan",
                why="inferred from a probe's plan",
            )
            skip = 2
        if outcome.ok:
            return (
                machine.close(
                    state,
                    now_ms=now_ms,
                    last_reason=state.last_reason,
                    actor=ACTOR,
                    why=f"a probe filled on {venue!r} ({outcome.reason})",
                ),
                skip,
            )
        return (
            machine.trip(
                state,
                failures=state.failures + 1,
                last_reason=outcome.reason,
                now_ms=now_ms,
                policy=policy,
                actor=ACTOR,
                why=f"a probe failed on {venue!r}",
            ),
            skip,
        )


class ExecutionBreakers:
    """The execute stage's hook: an outcome in, the control record to emit (if any) out."""

    def __init__(
        self,
        spec: BreakersSpec,
        control: ControlReader | None,
        topic: str | None,
        clock: Callable[[], int],
    ) -> None:
        self._watch = FailureWatch(spec)
        self._book = BreakerBook(control, topic or "")
        self._on = control is not None and topic is not None and spec.enabled
        self._clock = clock

    def report(self, outcome: StepOutcome) -> Output | None:
        if not self._on:
            return None
        seq, current = self._book.current(outcome.venue)
        now = self._clock()
        change = self._watch.observe(outcome, current, now)
        if change is None:
            return None
        state, skip = change
        return self._book.publish(state, seq=seq + skip, now_ms=now)
