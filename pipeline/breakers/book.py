"""Breaker states as one worker knows them, and the control records that change them.

Every transition is a ``venue.breaker_changed`` event on the control topic under the key
``breaker/<venue>``; its ``seq`` is the key's previous seq + 1.  A stage that publishes a
transition sees it come back through its control feed a moment later; until then it must not
act on the old state (and publish the same transition twice), so the book overlays what this
stage published on what the feed has applied, the newer by ``seq``.

Two workers can publish a transition of one venue at the same moment (both saw the third
failure).  They carry the same ``seq``: the control state applies the first one the topic
holds and ignores the other, so every worker agrees on the outcome.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.control.keys import breaker_key
from pipeline.control.publish import control_event
from pipeline.models.breakers import VenueBreakerChanged
from pipeline.models.events import Event
from pipeline.stages.base import Output

EVENT_TYPE = "venue.breaker_changed"


class ControlReader(Protocol):
    """What the breakers read of the control plane (``pipeline.control.state.ControlView``)."""

    def get(self, key: str) -> Event | None: ...


class BreakerBook:
    """The current breaker of each venue: the control topic's, or this stage's newer one."""

    def __init__(self, control: ControlReader | None, topic: str) -> None:
        self._control = control
        self._topic = topic
        self._mine: dict[str, Event] = {}

    @property
    def live(self) -> bool:
        """Whether there is a control topic at all (no topic: breakers never open)."""
        return self._control is not None

    def current(self, venue: str) -> tuple[int, VenueBreakerChanged | None]:
        """(seq, state) of the venue's breaker; ``(0, None)`` if nothing was ever published."""
        key = breaker_key(venue)
        seen = self._control.get(key) if self._control is not None else None
        mine = self._mine.get(key)
        if mine is not None and (seen is None or mine.seq > seen.seq):
            return mine.seq, mine.payload_as(VenueBreakerChanged)
        if mine is not None:
            del self._mine[key]  # the topic has caught up with it (or moved past it)
        if seen is None or seen.topic != EVENT_TYPE:
            return 0, None
        return seen.seq, seen.payload_as(VenueBreakerChanged)

    def publish(self, state: VenueBreakerChanged, *, seq: int, now_ms: int) -> Output:
        """The control record of a transition to ``state`` (remembered as this stage's)."""
        key = breaker_key(state.venue)
        event = control_event(key, EVENT_TYPE, state, seq, now_ms)
        self._mine[key] = event
        return Output.of_event(self._topic, event)
