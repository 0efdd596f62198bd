"""Performance metrics of a backtest: pure functions of an equity curve and trade results.

Definitions (what the report and the JSON say; the unit test checks them by hand):

    returns r_i       = E_i / E_(i-1) - 1, per period (the equity sampled every ``period``)
    total return      = E_last / E_first - 1
    Sharpe            = mean(r) / stdev(r) * sqrt(periods per year), stdev with n - 1;
                        risk-free rate 0; ``None`` with fewer than 2 returns or stdev 0
    Sortino           = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods per year), the
                        downside deviation over every period (target 0); ``None`` without a
                        negative return
    max drawdown      = max over i of (1 - E_i / max(E_0..E_i)), a positive fraction
    win rate          = trades with P&L > 0 / trades
    profit factor     = sum of winning P&L / |sum of losing P&L|; ``None`` without a loss
    turnover          = traded notional / mean equity

Periods per year count 365 days: crypto markets do not close.  Everything is Decimal (28
significant digits): the figures repeat exactly from one run to the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from itertools import pairwise

YEAR_MS = 365 * 24 * 3600 * 1000


def periods_per_year(period_ms: int) -> Decimal:
    return Decimal(YEAR_MS) / Decimal(period_ms)


def simple_returns(equity: Sequence[Decimal]) -> list[Decimal]:
    """Period returns; a period that starts at zero equity has none (it cannot be divided)."""
    return [b / a - 1 for a, b in pairwise(equity) if a != 0]


def total_return(equity: Sequence[Decimal]) -> Decimal | None:
    if len(equity) < 2 or equity[0] == 0:
        return None
    return equity[-1] / equity[0] - 1


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def sharpe(returns: Sequence[Decimal], per_year: Decimal) -> Decimal | None:
    if len(returns) < 2:
        return None
    mean = _mean(returns)
    variance = sum(((r - mean) ** 2 for r in returns), Decimal(0)) / (len(returns) - 1)
    if variance == 0:
        return None
    return mean / variance.sqrt() * per_year.sqrt()


def sortino(returns: Sequence[Decimal], per_year: Decimal) -> Decimal | None:
    if not returns:
        return None
    downside = _mean([min(r, Decimal(0)) ** 2 for r in returns])
    if downside == 0:
        return None
    return _mean(returns) / downside.sqrt() * per_year.sqrt()


def max_drawdown(equity: Sequence[Decimal]) -> Decimal:
    worst = Decimal(0)
    peak: Decimal | None = None
    for value in equity:
        peak = value if peak is None or value > peak else peak
        if peak > 0:
            worst = max(worst, 1 - value / peak)
    return worst


def drawdowns(equity: Sequence[Decimal]) -> list[Decimal]:
    """The drawdown at each point (for the report's plot)."""
    out: list[Decimal] = []
    peak: Decimal | None = None
    for value in equity:
        peak = value if peak is None or value > peak else peak
        out.append(1 - value / peak if peak and peak > 0 else Decimal(0))
    return out


def win_rate(pnls: Sequence[Decimal]) -> Decimal | None:
    if not pnls:
        return None
    return Decimal(sum(1 for p in pnls if p > 0)) / len(pnls)


def profit_factor(pnls: Sequence[Decimal]) -> Decimal | None:
    gains = sum((p for p in pnls if p > 0), Decimal(0))
    losses = -sum((p for p in pnls if p < 0), Decimal(0))
    if losses == 0:
        return None
    return gains / losses


def turnover(traded: Decimal, equity: Sequence[Decimal]) -> Decimal | None:
    if not equity:
        return None
    mean = _mean(equity)
    return traded / mean if mean else None


@dataclass(frozen=True)
class Metrics:
    """The report's figures; money in the quote asset, fractions as fractions."""

    quote: str
    period_ms: int
    start_equity: Decimal
    end_equity: Decimal
    total_return: Decimal | None
    sharpe: Decimal | None
    sortino: Decimal | None
    max_drawdown: Decimal
    trades: int
    win_rate: Decimal | None
    profit_factor: Decimal | None
    traded_notional: Decimal
    turnover: Decimal | None
    fees: Decimal
    slippage_vs_plan: Decimal
    """What the fills got worse than their plans' quotes, valued in the quote asset
    (negative: better)."""
    slippage_bps: Decimal | None
    """The same, in basis points of the traded notional."""
    fills: int
    intents: int
    completed: int
    failed: int

    def to_json(self) -> dict[str, object]:
        """Decimals as strings, rounded to 10 places (exact enough, and stable)."""
        out: dict[str, object] = {}
        for key, value in asdict(self).items():
            if isinstance(value, Decimal):
                value = format(value.quantize(Decimal("1e-10")).normalize(), "f")
            out[key] = value
        return out


def compute(
    *,
    quote: str,
    period_ms: int,
    equity: Sequence[Decimal],
    pnls: Sequence[Decimal],
    traded: Decimal,
    fees: Decimal,
    slippage: Decimal,
    fills: int,
    intents: int,
    completed: int,
    failed: int,
) -> Metrics:
    per_year = periods_per_year(period_ms)
    returns = simple_returns(equity)
    return Metrics(
        quote=quote,
        period_ms=period_ms,
        start_equity=equity[0] if equity else Decimal(0),
        end_equity=equity[-1] if equity else Decimal(0),
        total_return=total_return(equity),
        sharpe=sharpe(returns, per_year),
        sortino=sortino(returns, per_year),
        max_drawdown=max_drawdown(equity),
        trades=len(pnls),
        win_rate=win_rate(pnls),
        profit_factor=profit_factor(pnls),
        traded_notional=traded,
        turnover=turnover(traded, equity),
        fees=fees,
        slippage_vs_plan=slippage,
        slippage_bps=slippage / traded * 10_000 if traded else None,
        fills=fills,
        intents=intents,
        completed=completed,
        failed=failed,
    )
