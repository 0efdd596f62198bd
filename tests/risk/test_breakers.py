"""The breakers' verdict from loss and drawdown against the epoch."""

from __future__ import annotations

from decimal import Decimal

from pipeline.risk.breakers import Marks, RiskState, judge
from pipeline.topology.models import StrategyLimits

D = Decimal
LIMITS = StrategyLimits(
    capital=D(1000),
    reduce_at_loss=D(100),
    halt_at_loss=D(300),
    reduce_at_drawdown=D("0.2"),
    halt_at_drawdown=D("0.4"),
)


def test_loss_thresholds() -> None:
    assert judge(Marks(D(950), D(1000), D(1000)), LIMITS).state is RiskState.NORMAL
    reducing = judge(Marks(D(900), D(1000), D(1000)), LIMITS)
    assert (reducing.state, reducing.rule, reducing.actual) == (
        RiskState.REDUCING,
        "reduce_at_loss",
        D(100),
    )
    halted = judge(Marks(D(690), D(1000), D(1000)), LIMITS)
    assert (halted.state, halted.rule, halted.limit) == (RiskState.HALTED, "halt_at_loss", D(300))
    assert "loss 310.00 USDC since the epoch began reached halt_at_loss 300.00 USDC" in (
        halted.message("strategy:s", "USDC")
    )


def test_drawdown_from_the_peak_even_while_in_profit() -> None:
    # Up 500 on the day, then down 25 % from the peak: still a profit, but a drawdown.
    verdict = judge(Marks(D(1125), D(1000), D(1500)), LIMITS)
    assert (verdict.state, verdict.rule, verdict.actual) == (
        RiskState.REDUCING,
        "reduce_at_drawdown",
        D("0.25"),
    )
    assert "drawdown 25.0000% from the epoch's peak" in verdict.message("global", "USDC")


def test_no_thresholds_no_breaker() -> None:
    assert judge(Marks(D(-(10**9)), D(1000), D(1000)), StrategyLimits()).state is RiskState.NORMAL
