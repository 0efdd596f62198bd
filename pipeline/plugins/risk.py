"""What a risk-check plugin provides: a ``RiskCheckSpec`` (name, config model, factory).

The validate stage runs every check the topology enables (``plugins.risk_checks``) after its
built-in limits, on every intent that is well formed, and refuses the intent with a
``risk.rejected`` event naming the first rule that said no.  A check is a pure, fast
function of the intent (no I/O: it runs inside the stage's batch loop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from pipeline.models.assets import Asset
from pipeline.models.intent import Intent
from pipeline.topology.models import RiskLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RiskBreach:
    """Why a check refuses an intent: its rule, a sentence a person can act on, and the
    limit and the actual value as text (they go into ``risk.rejected`` as they are)."""

    rule: str
    message: str
    limit: str
    actual: str


@runtime_checkable
class RiskCheck(Protocol):
    name: str
    """The rule's name in ``risk.approved.checks`` and ``risk.rejected.rule``."""

    def check(self, intent: Intent, now_ms: int) -> RiskBreach | None:
        """``None`` if the intent may pass, else why not.  Must not block or do I/O."""
        ...


@dataclass(frozen=True)
class RiskCheckContext:
    """What the pipeline hands a risk-check factory."""

    assets: Mapping[str, Asset]
    """By symbol."""
    limits: RiskLimits
    """The topology's ``risk`` section (quote asset, reference prices...)."""


@dataclass(frozen=True)
class RiskCheckSpec:
    """A risk check a plugin registers: its name, config model and factory."""

    name: str
    config_model: type[BaseModel]
    factory: Callable[[BaseModel, RiskCheckContext], RiskCheck]
    description: str = ""


def run_checks(checks: Iterable[RiskCheck], intent: Intent, now_ms: int) -> list[RiskBreach]:
    """Every breach ``checks`` find.  A check that raises refuses the intent (fail closed:
    an intent a check could not judge is not waved through), and the error is logged."""
    breaches = []
    for check in checks:
        try:
            breach = check.check(intent, now_ms)
        except Exception as exc:
            log.exception("risk check failed", extra={"check": check.name, "intent": intent.id})
            breach = RiskBreach(
                check.name, f"risk check {check.name!r} failed: {exc!r}", "a verdict", "an error"
            )
        if breach is not None:
            breaches.append(breach)
    return breaches
