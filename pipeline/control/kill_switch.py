"""The kill switch as operations on the control topic, shared by ``sep kill`` and the API.

    engage(scope, actor, reason)   control.killed   on kill/<scope>  (no-op if engaged)
    resume(scope, actor, reason)   control.resumed  on kill/<scope>  (refused if not engaged)
    switches(state)                every switch ever used, engaged or not, newest first

A scope is ``global`` or ``strategy:<id>``.  Engaging publishes one record, acknowledged by
the broker before the call returns; every worker's control feed applies it within its fetch
wait (docs/kill_switch.md).  Resuming is never implicit: only ``resume`` does it, and
resuming a strategy leaves an engaged global switch engaged.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.control import keys
from pipeline.control.feed import ControlFeed
from pipeline.control.publish import publish_change
from pipeline.control.state import ControlState
from pipeline.models.breakers import VenueBreakerChanged
from pipeline.models.control import KillSwitchChanged
from pipeline.models.events import Event

KILLED, RESUMED = "control.killed", "control.resumed"
KILL_PREFIX = keys.kill_key("")
BREAKER_PREFIX = keys.breaker_key("")


class NotEngaged(Exception):
    """``resume`` of a switch that is not engaged (nothing to resume)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"the kill switch {scope} is not engaged: nothing to resume")


def scope_of(strategy_id: str | None) -> str:
    return keys.GLOBAL if strategy_id is None else keys.strategy_scope(strategy_id)


@dataclass(frozen=True)
class Switch:
    """One kill switch as the control topic last said."""

    scope: str
    engaged: bool
    actor: str
    reason: str
    since_ms: int
    seq: int

    def to_wire(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "engaged": self.engaged,
            "actor": self.actor,
            "reason": self.reason,
            "sinceMs": self.since_ms,
            "seq": self.seq,
        }


def _ms(event: Event) -> int:
    return int(event.timestamp.timestamp() * 1000)


def switches(state: ControlState) -> list[Switch]:
    """Every kill switch on the topic, engaged first, then newest first."""
    found = []
    for key, event in state.items():
        if key.startswith(KILL_PREFIX) and event.topic in (KILLED, RESUMED):
            change = event.payload_as(KillSwitchChanged)
            found.append(
                Switch(
                    change.scope,
                    event.topic == KILLED,
                    change.actor,
                    change.reason,
                    _ms(event),
                    event.seq,
                )
            )
    return sorted(found, key=lambda s: (not s.engaged, -s.since_ms))


def breakers(state: ControlState) -> list[VenueBreakerChanged]:
    """Every venue breaker that has ever changed, by venue."""
    return [
        event.payload_as(VenueBreakerChanged)
        for key, event in state.items()
        if key.startswith(BREAKER_PREFIX) and event.topic == "venue.breaker_changed"
    ]


async def read_state(bootstrap: str) -> ControlState:
    """The control topic as it is now (read once, from the beginning)."""
    feed = ControlFeed(bootstrap)
    await feed.start()
    try:
        return feed.state
    finally:
        await feed.stop()


async def _change(
    bootstrap: str, scope: str, actor: str, reason: str, *, engage: bool
) -> tuple[Event | None, ControlState]:
    """Publish the change unless it changes nothing; the event (None: no-op) and the state
    after it."""
    payload = KillSwitchChanged(scope=scope, actor=actor, reason=reason)  # validates the scope
    feed = ControlFeed(bootstrap)
    await feed.start()
    try:
        state = feed.state
        held = state.get(keys.kill_key(scope))
        engaged = held is not None and held.topic == KILLED
        if engage and engaged:
            return None, state
        if not engage and not engaged:
            raise NotEngaged(scope)
        event = await publish_change(
            bootstrap, keys.kill_key(scope), KILLED if engage else RESUMED, payload, feed=feed
        )
        state.apply(event)  # the feed may not have read it back yet
        return event, state
    finally:
        await feed.stop()


async def engage(
    bootstrap: str, scope: str, actor: str, reason: str
) -> tuple[Event | None, ControlState]:
    """Engage the switch of ``scope``; ``None`` for the event if it was engaged already."""
    return await _change(bootstrap, scope, actor, reason, engage=True)


async def resume(bootstrap: str, scope: str, actor: str, reason: str) -> tuple[Event, ControlState]:
    """Resume trading in ``scope``; ``NotEngaged`` if its switch is not engaged."""
    event, state = await _change(bootstrap, scope, actor, reason, engage=False)
    assert event is not None
    return event, state
