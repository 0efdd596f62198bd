"""Payloads of the control plane: operator and risk commands carried on ``sep.control``.

Each is a fact with who and why (``actor``, ``reason``): the compacted topic keeps the latest
per control key (``pipeline.control.keys``), the event store's ``operator_events`` keeps them
all.  They are not facts of an intent, so no intent's read model ever sees them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from pipeline.models.base import Amount, WireModel
from pipeline.models.breakers import VenueBreakerChanged

Actor = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=2_000)]


class KillSwitchChanged(WireModel):
    """``control.killed`` / ``control.resumed``: trading stopped or resumed in a scope."""

    scope: Annotated[str, Field(pattern=r"^(global|strategy:[^\x00-\x1f\x7f-\x9f]{1,128})$")]
    """``global`` or ``strategy:<strategy id>``: any id an intent may carry (1 to 128
    characters, no control character, ``models.intent.Identifier``), so that every strategy
    that can trade can be stopped on its own."""
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


class RiskStateChanged(WireModel):
    """``risk.state_changed`` (key ``risk/<scope>``): a scope's breaker state, with the numbers
    that set it (``pipeline.risk.breakers``).

    Published by a worker's risk engine when a threshold is crossed (``rule`` names it) or an
    epoch begins (``rule: "epoch"``, the baseline taken), and by an operator's reset
    (``rule: "reset"``).  ``state == previous`` is a record, not a transition (no alert).
    Amounts are in the risk quote asset; ``drawdown`` is a share of ``peakEquity``.
    """

    scope: Annotated[str, Field(pattern=r"^(global|strategy:.{1,128})$")]
    state: Literal["NORMAL", "REDUCING", "HALTED"]
    previous: Literal["NORMAL", "REDUCING", "HALTED"]
    rule: str
    """The threshold crossed (``reduce_at_loss``...), or ``epoch``, ``reset``, ``daily_reset``."""
    message: str
    epoch_ms: int
    """When the epoch whose baseline these numbers are measured from began."""
    equity: Amount | None = None
    baseline_equity: Amount | None = None
    """Equity when the epoch began (None: not taken yet, right after an operator's reset)."""
    peak_equity: Amount | None = None
    pnl: Amount | None = None
    """``equity - baselineEquity``."""
    drawdown: Amount | None = None
    limit: str | None = None
    actual: str | None = None
    thresholds: dict[str, str] = Field(default_factory=dict)
    actor: Actor
    reason: Reason


CONTROL_PAYLOAD_TYPES: dict[str, type[WireModel]] = {
    "control.killed": KillSwitchChanged,
    "control.resumed": KillSwitchChanged,
    "risk.limits_changed": RiskLimitsChanged,
    "strategy.enabled": StrategyChanged,
    "strategy.disabled": StrategyChanged,
    "strategy.configured": StrategyChanged,
    "venue.breaker_changed": VenueBreakerChanged,  # pipeline.breakers
    "risk.state_changed": RiskStateChanged,
}
"""Every event type that travels on ``sep.control`` (registered in ``PAYLOAD_TYPES`` too)."""
