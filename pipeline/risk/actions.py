"""The operator's risk actions, shared by ``sep risk`` and the API: each is one event on the
control topic with who and why (``operator_events`` keeps them all).

    set_limits(strategy, {rule: value})   risk.limits_changed on limits/<strategy>: the rules
                                           given on top of the strategy's current run-time
                                           overrides (``clear``: from none); ``*`` is every
                                           strategy's; value ``none`` switches a rule off
    reset(scope)                           risk.state_changed to NORMAL on risk/<scope> (rule
                                           ``reset``); the workers then take a new epoch's
                                           baseline (``pipeline.risk.engine``)
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pipeline.control.feed import ControlFeed
from pipeline.control.keys import ALL_STRATEGIES, GLOBAL, limits_key, risk_key
from pipeline.control.publish import publish_change
from pipeline.models.control import RiskLimitsChanged, RiskStateChanged
from pipeline.models.events import Event
from pipeline.risk.limits import parse_changes

SCOPE_HELP = "global, or strategy:<strategy id>"


class ScopeError(ValueError):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"unknown scope {scope!r}: give {SCOPE_HELP}")


def check_scope(scope: str) -> str:
    if scope == GLOBAL or (scope.startswith("strategy:") and len(scope) > len("strategy:")):
        return scope
    raise ScopeError(scope)


async def _feed(bootstrap: str, feed: ControlFeed | None) -> tuple[ControlFeed, bool]:
    if feed is not None:
        return feed, False
    own = ControlFeed(bootstrap)
    await own.start()
    return own, True


async def set_limits(
    bootstrap: str,
    strategy_id: str,
    changes: Mapping[str, str],
    *,
    actor: str,
    reason: str,
    clear: bool = False,
    feed: ControlFeed | None = None,
) -> Event:
    """Publish the strategy's new run-time limits; ``LimitError`` names a bad rule first."""
    parsed = parse_changes(changes)
    control, own = await _feed(bootstrap, feed)
    try:
        current: dict[str, str] = {}
        held = control.state.get(limits_key(strategy_id))
        if held is not None and not clear:
            current = dict(held.payload_as(RiskLimitsChanged).limits)
        payload = RiskLimitsChanged(
            strategy_id=strategy_id, limits={**current, **parsed}, actor=actor, reason=reason
        )
        return await publish_change(
            bootstrap, limits_key(strategy_id), "risk.limits_changed", payload, feed=control
        )
    finally:
        if own:
            await control.stop()


async def reset(
    bootstrap: str,
    scope: str,
    *,
    actor: str,
    reason: str,
    feed: ControlFeed | None = None,
) -> Event:
    """Put a scope's breaker back to NORMAL, starting a new epoch."""
    check_scope(scope)
    control, own = await _feed(bootstrap, feed)
    try:
        held = control.state.get(risk_key(scope))
        previous = (
            held.payload_as(RiskStateChanged).state
            if held is not None and held.topic == "risk.state_changed"
            else "NORMAL"
        )
        payload = RiskStateChanged(
            scope=scope,
            state="NORMAL",
            previous=previous,
            rule="reset",
            message=f"{scope} reset to NORMAL by {actor}: {reason}",
            epoch_ms=time.time_ns() // 1_000_000,
            actor=actor,
            reason=reason,
        )
        return await publish_change(
            bootstrap, risk_key(scope), "risk.state_changed", payload, feed=control
        )
    finally:
        if own:
            await control.stop()


__all__ = ["ALL_STRATEGIES", "SCOPE_HELP", "ScopeError", "check_scope", "reset", "set_limits"]
