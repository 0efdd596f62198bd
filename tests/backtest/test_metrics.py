"""The report's metrics against values worked out by hand on a tiny example.

Equity 100 -> 110 -> 99 -> 108.9 over quarter-year periods (4 per year):
    returns            +10 %, -10 %, +10 %                 mean 1/30
    sample stdev       sqrt(((2/30)^2 * 2 + (4/30)^2) / 2) = sqrt(0.04/3) = 0.2/sqrt(3)
    Sharpe             (1/30) / (0.2/sqrt(3)) * sqrt(4)    = 1/sqrt(3)   = 0.57735...
    downside deviation sqrt((0 + 0.01 + 0) / 3)            = 0.1/sqrt(3)
    Sortino            (1/30) / (0.1/sqrt(3)) * 2          = 2/sqrt(3)   = 1.15470...
    max drawdown       110 -> 99                           = 10 %
    total return       108.9 / 100 - 1                     = 8.9 %
Trades +30, -10, +20, -5: win rate 2/4, profit factor 50/15; turnover 400 / mean equity
(417.9 / 4 = 104.475) = 3.82866...
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.backtest.metrics import (
    YEAR_MS,
    compute,
    drawdowns,
    max_drawdown,
    profit_factor,
    sharpe,
    simple_returns,
    sortino,
    win_rate,
)

EQUITY = [Decimal(100), Decimal(110), Decimal(99), Decimal("108.9")]
PNLS = [Decimal(30), Decimal(-10), Decimal(20), Decimal(-5)]
SQRT3 = Decimal(3).sqrt()


def close(a: Decimal | None, b: Decimal) -> bool:
    return a is not None and abs(a - b) < Decimal("1e-20")


def test_the_metrics_of_the_tiny_example() -> None:
    metrics = compute(
        quote="USDC",
        period_ms=YEAR_MS // 4,
        equity=EQUITY,
        pnls=PNLS,
        traded=Decimal(400),
        fees=Decimal("1.2"),
        slippage=Decimal("0.4"),
        fills=4,
        intents=5,
        completed=4,
        failed=1,
    )
    assert simple_returns(EQUITY) == [Decimal("0.1"), Decimal("-0.1"), Decimal("0.1")]
    assert close(metrics.sharpe, 1 / SQRT3)
    assert close(metrics.sortino, 2 / SQRT3)
    assert metrics.max_drawdown == Decimal("0.1")
    assert metrics.total_return == Decimal("0.089")
    assert metrics.win_rate == Decimal("0.5")
    assert close(metrics.profit_factor, Decimal(50) / Decimal(15))
    assert close(metrics.turnover, Decimal(400) / Decimal("104.475"))
    assert metrics.slippage_bps == Decimal(10)  # 0.4 of 400
    assert metrics.to_json()["sharpe"] == "0.5773502692"


def test_undefined_figures_are_none_not_zero() -> None:
    flat = [Decimal(100)] * 5
    per_year = Decimal(4)
    assert sharpe(simple_returns(flat), per_year) is None  # no variance
    assert sortino(simple_returns(EQUITY[:2]), per_year) is None  # no downside
    assert sharpe([Decimal("0.1")], per_year) is None  # one return
    assert win_rate([]) is None
    assert profit_factor([Decimal(5)]) is None  # no loss to divide by


@pytest.mark.parametrize(
    ("equity", "worst"),
    [
        ([100, 120, 60, 130, 65], Decimal("0.5")),  # the later, deeper one
        ([100, 90, 80], Decimal("0.2")),
        ([100, 101, 102], Decimal(0)),
    ],
)
def test_max_drawdown_is_from_the_running_peak(equity: list[int], worst: Decimal) -> None:
    values = [Decimal(v) for v in equity]
    assert max_drawdown(values) == worst
    assert max(drawdowns(values)) == worst
