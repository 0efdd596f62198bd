"""A venue's circuit breaker as a pure state machine over its published state.

    closed ──(policy.failures consecutive counted failures)──► open
    open ──(cool-down over; the first probe intent is planned)──► half_open
    half_open ──(a probe's step fills)──► closed
    half_open ──(a probe's step fails, counted)──► open (a new cool-down)
    half_open ──(no outcome within a cool-down: probes lost, expired, killed)──► half_open
                                                    (a new round of probes)

The state *is* the last ``venue.breaker_changed`` payload (``VenueBreakerChanged``): each
function here takes the current one and returns the next, or raises ``BreakerTransitionError``
for a move the diagram does not have.  No clock, no I/O: the callers pass ``now``.
"""

from __future__ import annotations

from pipeline.breakers.config import BreakerPolicy
from pipeline.models.breakers import BreakerState, VenueBreakerChanged

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class BreakerTransitionError(ValueError):
    """A transition the state machine does not have (a caller's bug, never input's)."""

    def __init__(self, venue: str, state: BreakerState, wanted: BreakerState) -> None:
        self.venue, self.state, self.wanted = venue, state, wanted
        super().__init__(f"breaker of {venue!r}: no transition from {state} to {wanted}")


def initial(venue: str) -> VenueBreakerChanged:
    """A breaker nothing has been published for: closed since forever."""
    return VenueBreakerChanged(
        venue=venue,
        state=CLOSED,
        previous=CLOSED,
        failures=0,
        since_ms=0,
        actor="topology",
        reason="no transition recorded",
    )


def trip(
    current: VenueBreakerChanged,
    *,
    failures: int,
    last_reason: str,
    now_ms: int,
    policy: BreakerPolicy,
    actor: str,
    why: str,
) -> VenueBreakerChanged:
    """closed or half_open -> open until ``now + cooldown``."""
    if current.state is OPEN:
        raise BreakerTransitionError(current.venue, current.state, OPEN)
    return current.model_copy(
        update={
            "state": OPEN,
            "previous": current.state,
            "failures": failures,
            "last_reason": last_reason,
            "since_ms": now_ms,
            "retry_at_ms": now_ms + policy.cooldown_ms,
            "probes": 0,
            "trips": current.trips + 1,
            "actor": actor,
            "reason": why,
        }
    )


def half_open(
    current: VenueBreakerChanged, *, now_ms: int, policy: BreakerPolicy, actor: str, why: str
) -> VenueBreakerChanged:
    """open (cool-down over) -> half_open; or half_open -> a new round of probes."""
    if current.state is CLOSED or not cooled_down(current, now_ms, policy):
        raise BreakerTransitionError(current.venue, current.state, HALF_OPEN)
    return current.model_copy(
        update={
            "state": HALF_OPEN,
            "previous": current.state,
            "since_ms": now_ms,
            "retry_at_ms": None,
            "probes": policy.probes,
            "actor": actor,
            "reason": why,
        }
    )


def close(
    current: VenueBreakerChanged, *, now_ms: int, last_reason: str, actor: str, why: str
) -> VenueBreakerChanged:
    """half_open -> closed (a probe succeeded)."""
    if current.state is not HALF_OPEN:
        raise BreakerTransitionError(current.venue, current.state, CLOSED)
    return current.model_copy(
        update={
            "state": CLOSED,
            "previous": HALF_OPEN,
            "failures": 0,
            "last_reason": last_reason,
            "since_ms": now_ms,
            "retry_at_ms": None,
            "probes": 0,
            "actor": actor,
            "reason": why,
        }
    )


def cooled_down(current: VenueBreakerChanged, now_ms: int, policy: BreakerPolicy) -> bool:
    """Whether a new round of probes may start: an open breaker past its cool-down, or a
    half-open round that heard no outcome within a cool-down (its probes were lost)."""
    if current.state is OPEN:
        return current.retry_at_ms is not None and now_ms >= current.retry_at_ms
    if current.state is HALF_OPEN:
        return now_ms >= current.since_ms + policy.cooldown_ms
    return False


def probe_window_start(current: VenueBreakerChanged) -> int | None:
    """Plans made at or after this time (epoch ms) on the venue are probes: the planner lets
    none through before.  ``None`` when closed (no plan is a probe)."""
    if current.state is HALF_OPEN:
        return current.since_ms
    if current.state is OPEN:
        return current.retry_at_ms
    return None
