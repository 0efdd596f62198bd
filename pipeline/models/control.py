"""Payloads of the control plane: operator and risk commands carried on ``sep.control``.

Each is a fact with who and why (``actor``, ``reason``): the compacted topic keeps the latest
per control key (``pipeline.control.keys``), the event store's ``operator_events`` keeps them
all.  They are not facts of an intent, so no intent's read model ever sees them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from pipeline.models.base import WireModel

Actor = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=2_000)]


class KillSwitchChanged(WireModel):
    """``control.killed`` / ``control.resumed``: trading stopped or resumed in a scope."""

    scope: Annotated[str, Field(pattern=r"^(global|strategy:[A-Za-z0-9._:-]{1,128})$")]
    """``global`` or ``strategy:<strategy id>``."""
    actor: Actor
    reason: Reason


class RiskLimitsChanged(WireModel):
    """``risk.limits_changed``: a strategy's limits (``*``: every strategy's defaults)."""

    strategy_id: Annotated[str, Field(min_length=1, max_length=128)]
    limits: dict[str, str]
    """Rule name -> value as a decimal string; empty: back to the topology's limits."""
    actor: Actor
    reason: Reason


class StrategyChanged(WireModel):
    """``strategy.enabled`` / ``strategy.disabled`` / ``strategy.configured``."""

    strategy_id: Annotated[str, Field(min_length=1, max_length=128)]
    enabled: bool
    """Whether the strategy runs after this change (a reconfiguration repeats the state it
    leaves: compaction keeps only the latest change per key)."""
    plugin: str | None = None
    """The strategy plugin's registered name, when the change names it."""
    config: dict[str, Any] = Field(default_factory=dict)
    actor: Actor
    reason: Reason


CONTROL_PAYLOAD_TYPES: dict[str, type[WireModel]] = {
    "control.killed": KillSwitchChanged,
    "control.resumed": KillSwitchChanged,
    "risk.limits_changed": RiskLimitsChanged,
    "strategy.enabled": StrategyChanged,
    "strategy.disabled": StrategyChanged,
    "strategy.configured": StrategyChanged,
}
"""Every event type that travels on ``sep.control`` (registered in ``PAYLOAD_TYPES`` too)."""
