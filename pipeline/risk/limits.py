"""A strategy's risk rules, resolved: the topology's defaults, the strategy's overrides in the
topology, then the run-time changes on the control topic (``limits/*``, then
``limits/<strategy>``; ``pipeline.control``).

A run-time change carries rule -> value as text (``{"max_open_intents": "10"}``); ``"none"``
switches a rule off.  ``parse_changes`` checks a change before it is published (CLI, API), so
a worker meets only valid ones; one that is not (an older rule name) is logged and skipped
rather than stopping the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pipeline.topology.models import BreakerLimits, RiskLimits, StrategyLimits

log = logging.getLogger(__name__)

RULES: tuple[str, ...] = tuple(StrategyLimits.model_fields)
"""Every rule a strategy's limits can set."""
OFF = "none"
"""The value that switches a rule off at run time."""


class LimitError(ValueError):
    """A run-time limit change that cannot be applied: ``rule`` and why."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {message}")


def parse_changes(changes: Mapping[str, str]) -> dict[str, str]:
    """``changes`` checked and normalised (``"1e3"`` -> ``"1000"``), or ``LimitError``."""
    out: dict[str, str] = {}
    for rule, text in changes.items():
        if rule not in RULES:
            raise LimitError(rule, f"unknown rule; rules: {', '.join(RULES)}")
        value = text.strip()
        if value.lower() == OFF:
            out[rule] = OFF
            continue
        try:
            parsed = StrategyLimits.model_validate({rule: value})
        except ValidationError as exc:
            raise LimitError(rule, exc.errors()[0]["msg"]) from None
        number = getattr(parsed, rule)
        out[rule] = str(number) if isinstance(number, int) else format(number.normalize(), "f")
    return out


def resolve(
    risk: RiskLimits, strategy_id: str, changes: Mapping[str, str] | None = None
) -> StrategyLimits:
    """The rules that apply to ``strategy_id`` now."""
    merged: dict[str, Any] = risk.limits.model_dump(exclude_none=True)
    own = risk.strategies.get(strategy_id)
    if own is not None:
        merged.update(own.model_dump(exclude_none=True))
    for rule, value in (changes or {}).items():
        if rule not in RULES:
            log.warning("unknown risk rule in a limits change skipped", extra={"rule": rule})
        elif value == OFF:
            merged.pop(rule, None)
        else:
            merged[rule] = value
    try:
        return StrategyLimits.model_validate(merged)
    except ValidationError as exc:
        log.warning(
            "limits change not applicable; using the topology's",
            extra={"strategy": strategy_id, "error": str(exc)[:300]},
        )
        return resolve(risk, strategy_id)


def thresholds(limits: StrategyLimits | BreakerLimits) -> dict[str, str]:
    """The breaker thresholds that are set, as text (for ``risk.state_changed``)."""
    return {
        rule: format(value, "f")
        for rule in ("reduce_at_loss", "halt_at_loss", "reduce_at_drawdown", "halt_at_drawdown")
        if isinstance(value := getattr(limits, rule), Decimal)
    }
