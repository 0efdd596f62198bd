"""Positions from fills: holdings per asset, average cost basis, realised and unrealised P&L.

Pure Decimal arithmetic (Redis' Lua has only doubles, so this runs in Python).  A position is
a deterministic function of the *set* of fills, taken in (time, event id) order, so the live
read model and a replay agree whatever order the fills arrived in.

Valuation is in the topology's quote asset (USDC).  A fill against the quote asset is valued at
what was paid or received; a fill between two other assets (WBTC -> WETH) at the reference
price of the asset given up, since no market price of that moment is recorded.  The quote asset
itself is cash: it has a quantity but no cost basis or P&L.  Positions may go short (a paper
strategy can sell what it never bought); closing a short realises P&L as closing a long does.

Kept up incrementally (``Ledger``): the holdings after every fill, stored exactly, with the
fills of the last ``SETTLE_AFTER`` and the holdings before them, so that new fills are taken
in without reading the ones before (a late one within that time trades the recent ones
again).  A fill that sorts at or before the settled ones (it arrived more than
``SETTLE_AFTER`` after a later one) cannot be: the caller then computes from all the fills.
Both run the same trades in the same order, so they agree to the digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

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


def _fill_order(fill: Mapping[str, Any]) -> tuple[str, str]:
    return (fill["time"], fill["eventId"])


SETTLE_AFTER = timedelta(seconds=5)
"""How much later than a fill the newest fill must be for the fill to be settled into the
ledger's holdings.  Fills reach the read model out of time order (each project worker holds
its own partitions and lags by its own batches): a fill at most this much older than the
newest still folds in; a later one costs a computation from all fills."""

_FILL_FIELDS = ("time", "eventId", "assetIn", "amountIn", "assetOut", "amountOut")
"""What a fill in the ledger keeps: what orders and trades it."""


@dataclass
class Ledger:
    """A strategy's holdings, kept up fill by fill.

    ``settled``: after every fill up to ``watermark``; ``recent``: the fills after it, in
    order (a late fill may still land between them); ``current``: ``settled`` with the
    ``recent`` fills traded, what the positions are.  Cash is not set apart in any of them.
    """

    settled: dict[str, Holding] = field(default_factory=dict)
    watermark: tuple[str, str] | None = None
    """(time, event id) of the last fill settled; None: none yet."""
    recent: list[dict[str, str]] = field(default_factory=list)
    current: dict[str, Holding] = field(default_factory=dict)
    count: int = 0
    """Fills taken in: the caller checks it against the fills it holds (a writer that did
    not list its new fills, say an older version mid-upgrade, would otherwise go unseen)."""

    def fold(
        self, fills: Iterable[Mapping[str, Any]], quote: str, reference: Mapping[str, Decimal]
    ) -> bool:
        """Take ``fills`` in.  False, and nothing changed, if one sorts at or before the
        watermark: only a computation from all fills places it."""
        new = sorted(({k: f[k] for k in _FILL_FIELDS} for f in fills), key=_fill_order)
        if not new:
            return True
        if self.watermark is not None and _fill_order(new[0]) <= self.watermark:
            return False
        self.count += len(new)
        if self.recent and _fill_order(new[0]) > _fill_order(self.recent[-1]):
            for fill in new:  # the usual case: after every fill so far
                trade(self.current, fill, quote, reference)
            self.recent += new
            self._settle(quote, reference)
            return True
        # None recent (a ledger's first fills), or one lands among the recent fills: settle
        # what is old enough, then trade the rest (again) from the settled holdings.
        self.recent = sorted(self.recent + new, key=_fill_order)
        self._settle(quote, reference)
        self.current = _copy(self.settled)
        for fill in self.recent:
            trade(self.current, fill, quote, reference)
        return True

    def _settle(self, quote: str, reference: Mapping[str, Decimal]) -> None:
        newest = datetime.fromisoformat(self.recent[-1]["time"])
        settled = 0
        for fill in self.recent:
            if newest - datetime.fromisoformat(fill["time"]) < SETTLE_AFTER:
                break
            trade(self.settled, fill, quote, reference)
            settled += 1
        if settled:
            self.watermark = _fill_order(self.recent[settled - 1])
            del self.recent[:settled]

    def positions(self, quote: str) -> dict[str, Holding]:
        """The holdings after every fill, the quote asset as cash (what it was spent or
        received for is itself)."""
        out = dict(self.current)
        if quote in out:
            out[quote] = Holding(quantity=out[quote].quantity)
        return out

    def dumps(self) -> bytes:
        """Exact (Decimal strings, not rounded for the wire): a fold from a loaded ledger
        must give what the computation from all fills gives."""
        return orjson.dumps(
            {
                "watermark": self.watermark,
                "settled": _holdings_out(self.settled),
                "recent": self.recent,
                "current": _holdings_out(self.current),
                "count": self.count,
            }
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> Ledger:
        doc = orjson.loads(raw)
        mark = doc["watermark"]
        return cls(
            settled=_holdings_in(doc["settled"]),
            watermark=(mark[0], mark[1]) if mark else None,
            recent=doc["recent"],
            current=_holdings_in(doc["current"]),
            count=doc["count"],
        )


def _holdings_out(holdings: Mapping[str, Holding]) -> dict[str, list[str]]:
    return {a: [str(h.quantity), str(h.cost), str(h.realised)] for a, h in holdings.items()}


def _holdings_in(doc: Mapping[str, list[str]]) -> dict[str, Holding]:
    return {a: Holding(Decimal(q), Decimal(c), Decimal(r)) for a, (q, c, r) in doc.items()}


def _copy(holdings: Mapping[str, Holding]) -> dict[str, Holding]:
    return {asset: replace(h) for asset, h in holdings.items()}


def trade(
    holdings: dict[str, Holding],
    fill: Mapping[str, Any],
    quote: str,
    reference: Mapping[str, Decimal],
) -> None:
    """Trade one fill on ``holdings``: the asset given up sold, the one received bought,
    both at the fill's value in the quote asset (the ledger and the P&L history alike)."""
    value = _fill_value(fill, quote, reference)
    holdings.setdefault(fill["assetIn"], Holding()).trade(-Decimal(fill["amountIn"]), value)
    holdings.setdefault(fill["assetOut"], Holding()).trade(Decimal(fill["amountOut"]), value)


def ledger_from_fills(
    fills: Iterable[Mapping[str, Any]], quote: str, reference: Mapping[str, Decimal]
) -> Ledger:
    ledger = Ledger()
    ledger.fold(fills, quote, reference)  # from nothing, every fill folds
    return ledger


def holdings_from_fills(
    fills: Iterable[Mapping[str, Any]], quote: str, reference: Mapping[str, Decimal]
) -> dict[str, Holding]:
    return ledger_from_fills(fills, quote, reference).positions(quote)


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
