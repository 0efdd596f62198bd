"""Loss and drawdown breakers: NORMAL -> REDUCING -> HALTED, per strategy and global (pure).

A scope's **epoch** starts at a reset (the UTC day with ``breaker_reset: utc_day``, or an
operator's ``sep risk reset``); its **baseline** is the scope's equity then, and its **peak**
the highest equity seen since.  Then

    loss      = baseline - equity                 (positive: money lost in the epoch)
    drawdown  = (peak - equity) / peak            (a share of the peak)

and a scope moves to REDUCING when loss >= reduce_at_loss or drawdown >= reduce_at_drawdown,
to HALTED at the halt thresholds.  States only escalate by themselves; back to NORMAL only
by a recorded reset (which starts a new epoch).

    REDUCING  only intents that reduce exposure pass (``pipeline.risk.checks``)
    HALTED    nothing passes

The global scope is every strategy together: the sum of their equities and baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pipeline.control.keys import GLOBAL, strategy_scope
from pipeline.topology.models import BreakerLimits, StrategyLimits

__all__ = ["GLOBAL", "Marks", "RiskState", "Verdict", "judge", "scope_strategy", "strategy_scope"]

ZERO = Decimal(0)


class RiskState(StrEnum):
    NORMAL = "NORMAL"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {RiskState.NORMAL: 0, RiskState.REDUCING: 1, RiskState.HALTED: 2}


def scope_strategy(scope: str) -> str | None:
    """The strategy a scope is about (None: the global scope)."""
    return scope.removeprefix("strategy:") if scope.startswith("strategy:") else None


@dataclass(frozen=True)
class Marks:
    """A scope's equity against its epoch."""

    equity: Decimal
    baseline: Decimal
    peak: Decimal

    @property
    def pnl(self) -> Decimal:
        return self.equity - self.baseline

    @property
    def loss(self) -> Decimal:
        return max(self.baseline - self.equity, ZERO)

    @property
    def drawdown(self) -> Decimal:
        if self.peak <= 0:
            return ZERO
        return max((self.peak - self.equity) / self.peak, ZERO)


@dataclass(frozen=True)
class Verdict:
    """The state the numbers call for, and the rule that called for it (None: NORMAL)."""

    state: RiskState
    rule: str | None = None
    limit: Decimal | None = None
    actual: Decimal | None = None

    def message(self, scope: str, quote: str) -> str:
        if self.rule is None or self.limit is None or self.actual is None:
            return f"{scope} is {self.state}"
        if "drawdown" in self.rule:
            return (
                f"{scope}: drawdown {self.actual:.4%} from the epoch's peak reached "
                f"{self.rule} {self.limit:.4%} -> {self.state}"
            )
        return (
            f"{scope}: loss {_money(self.actual)} {quote} since the epoch began reached "
            f"{self.rule} {_money(self.limit)} {quote} -> {self.state}"
        )


def judge(marks: Marks, limits: StrategyLimits | BreakerLimits) -> Verdict:
    """The most severe state the thresholds call for (HALTED rules first)."""
    loss, drawdown = marks.loss, marks.drawdown
    for state, loss_rule, drawdown_rule in (
        (RiskState.HALTED, "halt_at_loss", "halt_at_drawdown"),
        (RiskState.REDUCING, "reduce_at_loss", "reduce_at_drawdown"),
    ):
        at_loss: Decimal | None = getattr(limits, loss_rule)
        if at_loss is not None and loss >= at_loss:
            return Verdict(state, loss_rule, at_loss, loss)
        at_drawdown: Decimal | None = getattr(limits, drawdown_rule)
        if at_drawdown is not None and drawdown >= at_drawdown:
            return Verdict(state, drawdown_rule, at_drawdown, drawdown)
    return Verdict(RiskState.NORMAL)


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"
