"""The payload of ``venue.breaker_changed``: a venue's circuit breaker after a transition.

Carried on the control topic under the key ``breaker/<venue>`` (compacted: the latest record
per venue is its state, so a worker starting up reads every breaker's state from the topic).
The payload is the *whole* state after the transition, not a delta, so one record suffices:

    {"venue": "sim", "state": "open", "previous": "closed", "failures": 3,
     "lastReason": "unavailable: injected failure 3 of 3", "sinceMs": 1765000000000,
     "retryAtMs": 1765000030000, "probes": 1, "trips": 1,
     "actor": "execute", "reason": "3 consecutive failures seen by one execute worker"}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from pipeline.models.base import WireModel


class BreakerState(StrEnum):
    CLOSED = "closed"
    """Trading normally; counted failures accumulate."""
    OPEN = "open"
    """The planner routes around the venue until ``retry_at_ms``."""
    HALF_OPEN = "half_open"
    """Up to ``probes`` intents may use the venue; the first outcome closes or re-opens it."""


class VenueBreakerChanged(WireModel):
    venue: str
    state: BreakerState
    previous: BreakerState
    failures: Annotated[int, Field(ge=0)]
    """Consecutive counted failures that opened it (0 once closed again)."""
    last_reason: str = ""
    """The last counted failure's reason (``exec.step_failed`` reason), or the probe's outcome."""
    since_ms: Annotated[int, Field(ge=0)]
    """When this state began (epoch ms)."""
    retry_at_ms: Annotated[int, Field(ge=0)] | None = None
    """Open: when the cool-down ends and probes may be let through."""
    probes: Annotated[int, Field(ge=0)] = 0
    """Half-open: how many probe intents the round may send."""
    probe_partition: Annotated[int, Field(ge=0)] | None = None
    """Half-open: the planner's input partition whose intents may probe (its one owner in
    the consumer group counts the probes, so the round sends at most ``probes``)."""
    trips: Annotated[int, Field(ge=0)] = 0
    """How many times the breaker has opened (re-opening after a failed probe counts)."""
    actor: str
    """Who made the transition: ``execute``, ``plan`` or ``operator:<name>``."""
    reason: str
    """Why, in words."""
