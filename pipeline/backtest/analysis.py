"""From a backtest's event log and its market data to positions, equity, trades and metrics.

    market data --pools that pair an asset with the quote asset--> price of each asset
    event log   --exec.step_filled--> fills (holdings move: asset_in out, asset_out in)
                --plan.created-------> each step's quote (slippage against plan) and legs (fees)
    both, in time order (a market event before a fill of the same millisecond)
                --every period--> equity = sum of holdings at market prices, exposure
                --FIFO lots------> trades (a sale closes the oldest purchases first; lots
                                   still open at the end are marked at the last price)
    --metrics.compute--> Metrics

Simplifications, said here and in docs/backtest.md: prices are the data's pools' spot prices
(reserves ratio), not our own trades' impact (the next market event replaces it); an asset
with no pool against the quote asset is valued at the topology's reference prices; the
account starts with ``capital`` of the quote asset and may go below zero (no funding limit in
the sim venue: equity still counts it); a sale of more than the run bought has no cost basis
for the excess, which then counts in equity but in no trade; fees are the pools' fee rates on
the planned legs' inputs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from pipeline.backtest.data import POOLS_TOPIC, MarketEvent, read_market
from pipeline.backtest.metrics import Metrics, compute, drawdowns
from pipeline.models.market import PoolState
from pipeline.topology.models import Topology

FEE_DENOMINATOR = Decimal(1_000_000)
FAILED = frozenset(
    {"exec.failed", "intent.expired", "risk.rejected", "plan.rejected", "intent.rejected"}
)


@dataclass(frozen=True)
class FillPoint:
    at_ms: int
    intent_id: str
    asset_in: str
    amount_in: Decimal
    asset_out: str
    amount_out: Decimal
    price: Decimal | None
    """Quote per unit of the non-quote asset traded (``None``: neither side is the quote)."""
    side: str
    """``buy`` (quote in, asset out), ``sell`` (asset in, quote out) or ``swap``."""


@dataclass
class Series:
    """What the report plots."""

    times: list[int] = field(default_factory=list)
    equity: list[Decimal] = field(default_factory=list)
    drawdown: list[Decimal] = field(default_factory=list)
    exposure: list[Decimal] = field(default_factory=list)
    """Value of the non-quote holdings over equity, per sample."""
    prices: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)
    """Per asset: (time, price in quote) at every market event (for the plot)."""
    fills: list[FillPoint] = field(default_factory=list)
    trades: list[tuple[str, int, Decimal, bool]] = field(default_factory=list)
    """(asset, closing time, P&L, still open at the end)."""


@dataclass(frozen=True)
class Analysis:
    metrics: Metrics
    series: Series


def _human(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals)


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


class _Book:
    """Holdings, prices and lots as the timeline is walked."""

    def __init__(self, quote: str, capital: Decimal, reference: Mapping[str, Decimal]) -> None:
        self.quote = quote
        self.holdings: dict[str, Decimal] = {quote: capital}
        self.prices: dict[str, Decimal] = {quote: Decimal(1)}
        self._reference = reference
        self.lots: dict[str, deque[list[Decimal]]] = {}
        self.trades: list[tuple[str, int, Decimal, bool]] = []

    def price(self, asset: str) -> Decimal:
        known = self.prices.get(asset)
        if known is not None:
            return known
        ref, quote_ref = self._reference.get(asset), self._reference.get(self.quote)
        return ref / quote_ref if ref is not None and quote_ref else Decimal(0)

    def equity(self) -> Decimal:
        return sum((q * self.price(a) for a, q in self.holdings.items()), Decimal(0))

    def exposure(self) -> Decimal:
        equity = self.equity()
        held = sum(
            (abs(q) * self.price(a) for a, q in self.holdings.items() if a != self.quote),
            Decimal(0),
        )
        return held / equity if equity else Decimal(0)

    def fill(
        self, at_ms: int, asset_in: str, amount_in: Decimal, asset_out: str, out: Decimal
    ) -> None:
        self.holdings[asset_in] = self.holdings.get(asset_in, Decimal(0)) - amount_in
        self.holdings[asset_out] = self.holdings.get(asset_out, Decimal(0)) + out
        value_in = amount_in * self.price(asset_in)
        value_out = out * self.price(asset_out)
        if asset_in != self.quote:
            self._close(asset_in, at_ms, amount_in, value_out)
        if asset_out != self.quote and out > 0:
            self.lots.setdefault(asset_out, deque()).append([out, value_in / out])

    def _close(self, asset: str, at_ms: int, qty: Decimal, proceeds: Decimal) -> None:
        lots = self.lots.get(asset)
        unit = proceeds / qty if qty else Decimal(0)
        pnl, closed = Decimal(0), Decimal(0)
        while lots and closed < qty:
            lot = lots[0]
            take = min(lot[0], qty - closed)
            pnl += take * (unit - lot[1])
            closed += take
            lot[0] -= take
            if lot[0] == 0:
                lots.popleft()
        if closed:
            self.trades.append((asset, at_ms, pnl, False))

    def mark_open(self, at_ms: int) -> None:
        for asset, lots in sorted(self.lots.items()):
            for qty, unit in lots:
                self.trades.append((asset, at_ms, qty * (self.price(asset) - unit), True))


def price_pools(states: Iterable[PoolState], quote: str) -> dict[str, str]:
    """Per asset, the pool its price is read from: the one pairing it with ``quote`` that
    holds the most of ``quote`` at its first state (ties: the lower pool id)."""
    best: dict[str, tuple[int, str]] = {}
    for state in states:
        if quote not in (state.token0, state.token1) or state.token0 == state.token1:
            continue
        asset = state.token1 if state.token0 == quote else state.token0
        depth = state.reserve0 if state.token0 == quote else state.reserve1
        current = best.get(asset)
        if current is None or (-depth, state.pool_id) < (-current[0], current[1]):
            best[asset] = (depth, state.pool_id)
    return {asset: pool_id for asset, (_, pool_id) in best.items()}


def _timeline(
    market: Iterable[MarketEvent], fills: Sequence[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, MarketEvent | None, dict[str, Any] | None]]:
    """Market events and fills merged by time, a market event first at equal times."""
    pending = deque(fills)
    for event in market:
        while pending and pending[0][0] < event.at_ms:
            at, fill = pending.popleft()
            yield at, None, fill
        yield event.at_ms, event, None
    for at, fill in pending:
        yield at, None, fill


def analyse(
    events: Iterable[bytes],
    data: Path,
    topology: Topology,
    *,
    quote: str | None = None,
    capital: Decimal = Decimal(100_000),
    period_ms: int = 3_600_000,
    window: tuple[int, int] | None = None,
) -> Analysis:
    """``window``: only the market events in ``[start, end)`` (a walk-forward fold's)."""
    quote = quote or topology.risk.quote_asset
    decimals = {a.symbol: a.decimals for a in topology.assets}
    reference = dict(topology.risk.reference_prices)
    steps: dict[str, dict[str, Any]] = {}
    fills: list[tuple[int, dict[str, Any]]] = []
    intents = completed = failed = 0
    for raw in events:
        event = orjson.loads(raw)
        kind = event["topic"]
        if kind == "plan.created":
            for step in event["payload"]["plan"]["steps"]:
                steps[step["stepId"]] = step
        elif kind == "exec.step_filled":
            fills.append(
                (_ms(event["timestamp"]), {**event["payload"], "intent": event["correlationId"]})
            )
        elif kind == "intent.submitted":
            intents += 1
        elif kind == "exec.completed":
            completed += 1
        elif kind in FAILED:
            failed += 1
    fills.sort(key=lambda f: f[0])

    first_states: dict[str, PoolState] = {}
    for event in read_market(data):
        key = event.key.decode()
        if event.topic == POOLS_TOPIC and key not in first_states:
            first_states[key] = PoolState.model_validate_json(event.value)
    fee_of = {s.pool_id: s.fee for s in first_states.values()}
    sources = {
        pool_id: asset for asset, pool_id in price_pools(first_states.values(), quote).items()
    }

    book = _Book(quote, capital, reference)
    result = Series()
    traded = fees = slippage = Decimal(0)
    next_sample: int | None = None
    last_at = 0
    market_events = read_market(data)
    if window is not None:
        market_events = (e for e in market_events if window[0] <= e.at_ms < window[1])
    for at_ms, market, fill in _timeline(market_events, fills):
        if next_sample is None:
            next_sample = at_ms
        # A sample at t holds the market up to t and the fills before t (marked at the
        # moment's prices, before its trades): the first one is the starting capital.
        while at_ms > next_sample or (fill is not None and at_ms >= next_sample):
            _sample(result, book, next_sample)
            next_sample += period_ms
        last_at = at_ms
        if market is not None:
            if market.topic != POOLS_TOPIC:
                continue
            state = PoolState.model_validate_json(market.value)
            asset = sources.get(state.pool_id)
            if asset is None:
                continue
            r_asset, r_quote = (
                (state.reserve1, state.reserve0)
                if state.token0 == quote
                else (state.reserve0, state.reserve1)
            )
            price = _human(r_quote, decimals[quote]) / _human(r_asset, decimals[asset])
            book.prices[asset] = price
            result.prices.setdefault(asset, []).append((at_ms, price))
            continue
        assert fill is not None
        asset_in, asset_out = fill["assetIn"], fill["assetOut"]
        amount_in, amount_out = Decimal(fill["amountIn"]), Decimal(fill["amountOut"])
        notional = amount_in * book.price(asset_in)
        traded += notional
        step = steps.get(fill["stepId"])
        if step is not None:
            for leg in step["legs"]:
                fee = Decimal(fee_of.get(leg["poolId"], 0)) / FEE_DENOMINATOR
                leg_in = _human(int(leg["amountIn"]), decimals[leg["tokenIn"]])
                fees += leg_in * fee * book.price(leg["tokenIn"])
            if step["mode"] == "EXACT_IN":
                slippage += (Decimal(step["amountOut"]) - amount_out) * book.price(asset_out)
            else:
                slippage += (amount_in - Decimal(step["amountIn"])) * book.price(asset_in)
        side = "buy" if asset_in == quote else "sell" if asset_out == quote else "swap"
        price_of = (
            amount_in / amount_out
            if side == "buy" and amount_out
            else amount_out / amount_in
            if side == "sell" and amount_in
            else None
        )
        result.fills.append(
            FillPoint(
                at_ms, fill["intent"], asset_in, amount_in, asset_out, amount_out, price_of, side
            )
        )
        book.fill(at_ms, asset_in, amount_in, asset_out, amount_out)
    if next_sample is not None:
        while next_sample <= last_at:
            _sample(result, book, next_sample)
            next_sample += period_ms
        if not result.times or result.times[-1] != last_at:
            _sample(result, book, last_at)
    book.mark_open(last_at)
    result.trades = book.trades
    result.drawdown = drawdowns(result.equity)
    metrics = compute(
        quote=quote,
        period_ms=period_ms,
        equity=result.equity,
        pnls=[t[2] for t in book.trades],
        traded=traded,
        fees=fees,
        slippage=slippage,
        fills=len(fills),
        intents=intents,
        completed=completed,
        failed=failed,
    )
    return Analysis(metrics, result)


def _sample(result: Series, book: _Book, at_ms: int) -> None:
    result.times.append(at_ms)
    result.equity.append(book.equity())
    result.exposure.append(book.exposure())
