"""What the risk engine sees, as JSON for the operator: limits in force against usage, per
strategy, and the marks.  A worker's engine writes it to Redis after every evaluation
(``pipeline.store.risk_usage``: expiring, so no worker validating means no report), and
``GET /risk`` reads it next to the control plane's state.  Every validating worker writes
its own view; they differ only by what each has read in the last moment.

    {"at": ms, "quoteAsset": "USDC",
     "marks": {"WETH": {"price": "2950.1", "ageMs": 120, "source": "sim/sim-weth-usdc-5"}},
     "strategies": {"dca": {"limits": {"max_position": "5000000", ...},
                            "usage": {"openIntents": 3, "tradedToday": "1200.5",
                                      "positions": {"WETH": {"quantity": "1.5",
                                                             "value": "4425.1"}},
                                      "largestPosition": "4425.1", "concentration": "0.0004",
                                      "equity": "...", "pnl": "...", "realisedPnl": "...",
                                      "unrealisedPnl": "..."}}},
     "scopes": {"strategy:dca": {"equity": "...", "baseline": "...", "peak": "...",
                                 "pnl": "...", "drawdown": "..."}}}
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from pipeline.risk.book import RiskBook
from pipeline.risk.checks import StrategyView
from pipeline.risk.prices import MarketMarks
from pipeline.topology.models import StrategyLimits


class RiskEngine(Protocol):
    """What the report reads of ``pipeline.risk.engine.RiskEngine``."""

    quote: str
    marks: MarketMarks
    book: RiskBook
    scope_marks: dict[str, dict[str, str]]

    def strategies(self) -> list[str]: ...

    def limits(self, strategy_id: str) -> StrategyLimits: ...

    def view(self, strategy_id: str, now: int) -> StrategyView: ...


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def usage_report(engine: RiskEngine, now: int) -> dict[str, Any]:
    quote = engine.quote
    marks: dict[str, Any] = {}
    for asset, mark in sorted(engine.marks.board.marks().items()):
        marks[asset] = {"price": _s(mark.price), "ageMs": now - mark.at_ms, "source": mark.source}
    strategies: dict[str, Any] = {}
    for strategy in engine.strategies():
        limits = engine.limits(strategy)
        view = engine.view(strategy, now)
        valuation = engine.book.valuation(strategy, engine.marks.last)
        positions: dict[str, Any] = {}
        largest = Decimal(0)
        for asset, quantity in sorted(view.projected.items()):
            price = engine.marks.last(asset)
            value = abs(quantity) * price if price is not None else None
            if value is not None:
                largest = max(largest, value)
            positions[asset] = {
                "quantity": _s(quantity),
                "held": _s(view.positions.get(asset, Decimal(0))),
                "value": None if value is None else _s(value),
            }
        committed = view.open_notional
        strategies[strategy] = {
            "limits": {k: str(v) for k, v in limits.model_dump(exclude_none=True).items()},
            "usage": {
                "openIntents": view.open_count,
                "tradedToday": _s(view.traded_today),
                "openNotional": _s(committed),
                "positions": positions,
                "largestPosition": _s(largest),
                "concentration": (
                    _s(largest / view.equity) if view.equity and view.equity > 0 else None
                ),
                "equity": None if view.equity is None else _s(view.equity),
                "realisedPnl": _s(valuation.realised),
                "unrealisedPnl": _s(valuation.unrealised),
                "pnl": _s(valuation.pnl),
            },
        }
    return {
        "at": now,
        "quoteAsset": quote,
        "marks": marks,
        "strategies": strategies,
        "scopes": engine.scope_marks,
    }
