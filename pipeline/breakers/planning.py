"""The planner's side of the venue breakers: which venues an intent may use, and probes.

Per intent, before routing (``admit``):

    venue's breaker            the intent
    closed                     may use it
    open, cooling down         may not
    open past its cool-down,   probes it, if it came on the round's probe partition, may use
    or half-open with probes   the venue, and the round has a probe left: routed on that
    left                       venue alone first (a probe must reach it even when another
                               venue quotes better), on the others if it cannot be
    otherwise                  may not

After routing (``settle``): a refusal for want of a route, when a breaker excluded a venue,
becomes ``plan.rejected`` reason ``breaker_open`` naming the breakers; a plan on an excluded
venue (an order book's: books are planned after the pools) becomes that refusal too; the
first probe of a round publishes the ``half_open`` transition (actor ``plan``).

**How probes are counted across planners**: a round's probes may come only from one input
partition, ``probe_partition(venue, seq)`` of the breaker's state before the round; the
consumer group gives each partition to one planner, so one planner counts the round's probes
and at most ``probes`` are sent.  The price: a probe waits for an intent on that partition
(one in ``partitions`` of the traffic).  A rebalance moving the partition mid-round lets the
new owner count from zero (at most ``probes`` more).  A round that hears no outcome within a
cool-down (its probes expired or were killed) is started again by the same partition's owner.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from pipeline.breakers import machine
from pipeline.breakers.book import BreakerBook, ControlReader
from pipeline.breakers.config import BreakersSpec
from pipeline.models.breakers import BreakerState, VenueBreakerChanged
from pipeline.models.events import PlanCreated, PlanRejected
from pipeline.models.intent import Intent
from pipeline.stages.base import Output

REJECTION = "breaker_open"
ACTOR = "plan"
G = TypeVar("G")


def probe_partition(venue: str, seq: int, partitions: int) -> int:
    """The input partition whose intents may start the round after state ``seq``."""
    return zlib.crc32(f"{venue}/{seq}".encode()) % partitions


@dataclass(frozen=True)
class Admission:
    """What one intent may do with the venues whose breakers are not closed."""

    excluded: frozenset[str] = frozenset()
    """Venues it may not use."""
    probe: str | None = None
    """The venue it probes (a probe slot is held for it until ``settle``)."""
    blocking: tuple[VenueBreakerChanged, ...] = ()
    """The breakers that excluded venues (their words go in a refusal)."""

    def route(
        self,
        graphs: Mapping[str, G],
        plan_on: Callable[[Mapping[str, G]], PlanCreated | PlanRejected],
    ) -> PlanCreated | PlanRejected:
        """Route on the graphs it may use: the probe venue alone first, then the others."""
        if self.probe is not None and self.probe in graphs:
            result = plan_on({self.probe: graphs[self.probe]})
            if isinstance(result, PlanCreated):
                return result
        if not self.excluded and self.probe is None:
            return plan_on(graphs)
        skip = self.excluded | ({self.probe} if self.probe else set())
        return plan_on({venue: g for venue, g in graphs.items() if venue not in skip})


@dataclass
class _Round:
    """This planner's count of one half-open round's probes."""

    state: VenueBreakerChanged
    seq: int
    partition: int
    held: int = 0
    used: int = 0
    started: bool = field(default=False)
    """Whether the round's ``half_open`` is published (by this planner, or seen)."""


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


def describe(state: VenueBreakerChanged) -> str:
    """A breaker in words, for a refusal's detail."""
    what = f"circuit breaker of venue {state.venue!r} is {state.state.value}"
    if state.state is BreakerState.OPEN:
        what += f" since {_time(state.since_ms)} ({state.reason}; last: {state.last_reason})"
        if state.retry_at_ms is not None:
            what += f", probes from {_time(state.retry_at_ms)}"
    elif state.state is BreakerState.HALF_OPEN:
        what += f" since {_time(state.since_ms)}: its probes are taken"
    return what


class PlanningBreakers:
    """The plan stage's hook (see the module docstring)."""

    def __init__(
        self,
        spec: BreakersSpec,
        control: ControlReader | None,
        topic: str | None,
        partitions: int,
        venues: Collection[str],
    ) -> None:
        self._spec = spec
        self._book = BreakerBook(control, topic or "")
        self._on = control is not None and topic is not None and spec.enabled
        self._partitions = partitions
        self._venues = tuple(sorted(venues))
        self._rounds: dict[str, _Round] = {}

    def _round(self, venue: str, now_ms: int) -> tuple[VenueBreakerChanged | None, _Round | None]:
        """The venue's breaker, and the probe round this planner may send on now, if any."""
        seq, state = self._book.current(venue)
        if state is None or state.state is BreakerState.CLOSED:
            self._rounds.pop(venue, None)
            return state, None
        known = self._rounds.get(venue)
        if state.state is BreakerState.HALF_OPEN and not machine.cooled_down(
            state, now_ms, self._spec.policy(venue)
        ):
            # A round in progress (ours, or one we join after a restart or a rebalance, and
            # count from zero): its probe partition's owner sends its probes.
            if known is None or known.seq != seq:
                known = _Round(state, seq, state.probe_partition or 0, started=True)
                self._rounds[venue] = known
            return state, known
        if not machine.cooled_down(state, now_ms, self._spec.policy(venue)):
            return state, None  # open, cooling down
        if known is None or known.seq != seq or known.started:
            # A new round: after an open breaker's cool-down, from the partition its seq
            # picks; after a silent round, from the same partition again.
            partition = (
                state.probe_partition
                if state.state is BreakerState.HALF_OPEN and state.probe_partition is not None
                else probe_partition(venue, seq, self._partitions)
            )
            known = _Round(state, seq, partition)
            self._rounds[venue] = known
        return state, known

    def admit(self, intents: Sequence[tuple[Intent, int]], now_ms: int) -> list[Admission]:
        """For each (intent, its input partition): the venues it may use, and its probe."""
        if not self._on:
            return [Admission()] * len(intents)
        states: dict[str, tuple[VenueBreakerChanged, _Round | None]] = {}
        for venue in self._venues:
            state, round_ = self._round(venue, now_ms)
            if state is not None and state.state is not BreakerState.CLOSED:
                states[venue] = (state, round_)
        if not states:
            return [Admission()] * len(intents)
        admissions = []
        for intent, partition in intents:
            allowed = intent.constraints.allowed_venues
            excluded: set[str] = set()
            probe: str | None = None
            for venue, (_, round_) in states.items():
                if allowed is not None and venue not in allowed:
                    continue
                if (
                    probe is None
                    and round_ is not None
                    and partition == round_.partition
                    and round_.held + round_.used < self._spec.policy(venue).probes
                ):
                    round_.held += 1
                    probe = venue
                else:
                    excluded.add(venue)
            blocking = tuple(states[v][0] for v in sorted(excluded))
            admissions.append(Admission(frozenset(excluded), probe, blocking))
        return admissions

    def settle(
        self, admission: Admission, result: PlanCreated | PlanRejected, now_ms: int
    ) -> tuple[PlanCreated | PlanRejected, list[Output]]:
        """The answer as the breakers allow it, and the control records to publish first."""
        outputs: list[Output] = []
        if admission.probe is not None:
            round_ = self._rounds[admission.probe]
            round_.held -= 1
            used = isinstance(result, PlanCreated) and any(
                step.venue == admission.probe for step in result.plan.steps
            )
            if used:
                round_.used += 1
                if not round_.started:
                    outputs.append(self._start(round_, now_ms))
        if isinstance(result, PlanCreated):
            blocked = sorted({s.venue for s in result.plan.steps} & admission.excluded)
            if not blocked:
                return result, outputs
        elif not admission.excluded or result.reason != "no_route":
            return result, outputs
        words = "; ".join(describe(state) for state in admission.blocking)
        detail = (
            f"{words}; no other venue can take it ({result.detail})"
            if isinstance(result, PlanRejected)
            else f"{words}; the plan needed it"
        )
        return PlanRejected(reason=REJECTION, detail=detail), outputs

    def _start(self, round_: _Round, now_ms: int) -> Output:
        """Publish the round's ``half_open``: from now on plans on the venue are probes."""
        policy = self._spec.policy(round_.state.venue)
        nxt = machine.half_open(
            round_.state,
            now_ms=now_ms,
            policy=policy,
            actor=ACTOR,
            why=(
                "cool-down over: probing"
                if round_.state.state is BreakerState.OPEN
                else "no probe outcome within a cool-down: probing again"
            ),
        ).model_copy(update={"probe_partition": round_.partition})
        output = self._book.publish(nxt, seq=round_.seq + 1, now_ms=now_ms)
        round_.state, round_.seq, round_.started = nxt, round_.seq + 1, True
        return output
