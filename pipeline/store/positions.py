"""Positions from fills: holdings per asset, average cost basis, realised and unrealised P&L.

Pure Decimal arithmetic (Redis' Lua has only doubles, so this runs in Python).  A position is
a deterministic function of the *set* of fills, taken in (time, event id) order, so the live
read model and a replay agree whatever order the fills arrived in.

Valuation is in the topology's quote asset (USDC).  A fill against the quote asset is valued at
what was paid or received; a fill between two other assets (WBTC -> WETH) at the reference
price of the asset given up, since no market price of that moment is recorded.  The quote asset
itself is cash: it has a quantity but no cost basis or P&L.  Positions may go short (a paper
strategy can sell what it never bought); closing a short realises P&L as closing a long does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipeline.models.base import wire_amount

ZERO = Decimal(0)


@dataclass
class Holding:
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    """Signed: quantity x average entry price (negative for a short)."""
    realised: Decimal = ZERO

    def trade(self, quantity: Decimal, value: Decimal) -> None:
        """Buy (quantity > 0) or sell (< 0) ``|quantity|`` for ``value`` (>= 0) in quote."""
        if quantity == 0:
            return
        price = value / abs(quantity)
        if self.quantity == 0 or (self.quantity > 0) == (quantity > 0):
            self.quantity += quantity
            self.cost += price * quantity
            return
        closing = min(abs(quantity), abs(self.quantity))
        direction = Decimal(1) if self.quantity > 0 else Decimal(-1)
        average = self.cost / self.quantity
        self.realised += (price - average) * closing * direction
        self.cost -= average * closing * direction
        self.quantity += quantity
        if self.quantity == 0:
            self.cost = ZERO
        elif (self.quantity > 0) == (quantity > 0):  # flipped: the rest opens at this price
            self.cost = price * self.quantity

    def to_wire(self) -> dict[str, str]:
        return {
            "quantity": _s(self.quantity),
            "costBasis": _s(self.cost),
            "realisedPnl": _s(self.realised),
        }


def _s(value: Decimal) -> str:
    return format(wire_amount(value).normalize(), "f") if value else "0"


def _fill_value(fill: Mapping[str, Any], quote: str, reference: Mapping[str, Decimal]) -> Decimal:
    if fill["assetOut"] == quote:
        return Decimal(fill["amountOut"])
    if fill["assetIn"] == quote:
        return Decimal(fill["amountIn"])
    return Decimal(fill["amountIn"]) * reference.get(fill["assetIn"], ZERO)


def holdings_from_fills(
    fills: Iterable[Mapping[str, Any]], quote: str, reference: Mapping[str, Decimal]
) -> dict[str, Holding]:
    out: dict[str, Holding] = {}
    for fill in sorted(fills, key=lambda f: (f["time"], f["eventId"])):
        value = _fill_value(fill, quote, reference)
        out.setdefault(fill["assetIn"], Holding()).trade(-Decimal(fill["amountIn"]), value)
        out.setdefault(fill["assetOut"], Holding()).trade(Decimal(fill["amountOut"]), value)
    if quote in out:  # cash: what it was spent or received for is itself
        out[quote] = Holding(quantity=out[quote].quantity)
    return out


def valued(
    holding: Mapping[str, str], asset: str, quote: str, price: Decimal | None
) -> dict[str, str | None]:
    """A stored holding with its unrealised P&L against ``price`` (None if no price known)."""
    quantity, cost = Decimal(holding["quantity"]), Decimal(holding["costBasis"])
    if asset == quote:
        unrealised: Decimal | None = ZERO
        market: Decimal | None = quantity
    elif price is None:
        unrealised = market = None
    else:
        market = quantity * price
        unrealised = market - cost
    return {
        "asset": asset,
        "quantity": holding["quantity"],
        "costBasis": holding["costBasis"],
        "realisedPnl": holding["realisedPnl"],
        "lastPrice": _s(price) if price is not None else None,
        "marketValue": _s(market) if market is not None else None,
        "unrealisedPnl": _s(unrealised) if unrealised is not None else None,
    }
