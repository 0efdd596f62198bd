"""Chart history, read from the event store alone: prices with this platform's fills marked on
them, P&L and equity per strategy, intents per state over time.

Every point is a function of the stored events (PostgreSQL), never of the Redis read models,
so ``sep replay`` (which rebuilds Redis) cannot move one; a page refresh draws the same
picture.  The formulas are the read model's own (``projection.project`` for prices,
``positions.Holding`` and ``valued`` for P&L), so the last P&L point equals ``GET /positions``
and the last states point equals ``GET /stats``.

Times are whole seconds (UTC), the resolution the charts draw at: several observations within
one second give that second's last value; fills are kept one by one (with milliseconds).

Each call reads the whole history of what it draws (one query, no cache): fine for the
tens of thousands of intents a dev stack holds; a long-lived store wants a rollup table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
import orjson

from pipeline.store.eventstore import StoredEvent, to_event
from pipeline.store.positions import Holding, trade, valued
from pipeline.store.projection import STATE_OF, project

# The events whose payload names the intent's strategy (as the read model reads it).
_CARRIES_STRATEGY = ("intent.submitted", "intent.accepted", "intent.prioritised", "plan.created")
_STATE_TOPICS = tuple(t for t, s in STATE_OF.items() if s)
_NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
MAX_POINTS = 300

_FILLS = """
SELECT f.time, f.event_id, f.topic, f.correlation_id, f.causation_id, f.seq, f.version,
       f.payload,
       (SELECT s.payload->'intent'->>'strategyId' FROM events s
         WHERE s.correlation_id = f.correlation_id AND s.topic = ANY($1::text[])
         ORDER BY s.seq LIMIT 1) AS strategy
FROM events f WHERE f.topic = 'exec.step_filled'
"""
_PLANS = "SELECT time, event_id, payload FROM events WHERE topic = 'plan.created'"
_STATES = "SELECT time, event_id, correlation_id, seq, topic FROM events WHERE topic = ANY($1)"


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _plain(value: Decimal) -> str:
    # As views.py writes a sum: normalised, no exponent, "0" for zero.
    return format(value.normalize(), "f") if value else "0"


def market_of(asset_a: str, asset_b: str, quote: str) -> tuple[str, str]:
    """(base, quote) of a trade between two assets: priced in the topology's quote asset when
    one side is it, else the alphabetically second in the first (WBTC/WETH: WETH per WBTC)."""
    if asset_b == quote or (asset_a != quote and asset_a < asset_b):
        return asset_a, asset_b
    return asset_b, asset_a


def _price(base_amount: str, quote_amount: str) -> Decimal | None:
    try:
        base, quoted = Decimal(base_amount), Decimal(quote_amount)
    except InvalidOperation:
        return None
    return quoted / base if base > 0 else None


@dataclass(frozen=True)
class Fill:
    time: datetime
    event_id: str
    seq: int
    intent_id: str
    strategy: str
    step_id: str
    venue: str
    asset_in: str
    asset_out: str
    amount_in: str
    amount_out: str
    prices: dict[str, str]
    """The latest prices this fill sets (the read model's ``prices`` hash)."""

    def as_position_fill(self) -> dict[str, Any]:
        return {
            "assetIn": self.asset_in,
            "assetOut": self.asset_out,
            "amountIn": self.amount_in,
            "amountOut": self.amount_out,
        }


class History:
    """Reads chart series from the event store (its own small connection pool)."""

    def __init__(
        self, pool: asyncpg.Pool, *, quote_asset: str, reference_prices: Mapping[str, Decimal]
    ) -> None:
        self._pool = pool
        self.quote_asset = quote_asset
        self.reference_prices = dict(reference_prices)

    @classmethod
    async def connect(
        cls, dsn: str, *, quote_asset: str, reference_prices: Mapping[str, Decimal]
    ) -> History:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        return cls(pool, quote_asset=quote_asset, reference_prices=reference_prices)

    async def close(self) -> None:
        await self._pool.close()

    # ------------------------------------------------------------------------- reads

    async def fills(self) -> list[Fill]:
        """Every fill, one per step (the highest seq, as the read model keeps it), in
        (time, event id) order: the order positions are computed in."""
        rows = await self._pool.fetch(_FILLS, list(_CARRIES_STRATEGY))
        by_step: dict[tuple[str, str], Fill] = {}
        for r in rows:
            stored = StoredEvent(
                r["time"],
                r["event_id"],
                r["topic"],
                r["correlation_id"],
                r["causation_id"],
                r["seq"],
                r["version"],
                _json(r["payload"]),
            )
            p = stored.payload
            fill = Fill(
                stored.time,
                stored.event_id,
                stored.seq,
                stored.correlation_id,
                r["strategy"] or "",
                p["stepId"],
                p["venue"],
                p["assetIn"],
                p["assetOut"],
                p["amountIn"],
                p["amountOut"],
                project(to_event(stored), self.quote_asset).prices,
            )
            key = (fill.strategy, fill.step_id)
            if key not in by_step or by_step[key].seq < fill.seq:
                by_step[key] = fill
        return sorted(by_step.values(), key=lambda f: (f.time, f.event_id))

    async def prices(self, market: str | None, venue: str | None = None) -> dict[str, Any]:
        """One market's price over time: the planner's quotes (``plan.created`` steps) and
        the fills, each second's last; the fills themselves, to mark on it."""
        quote = self.quote_asset
        observations: list[tuple[datetime, str, str, Decimal, str]] = []
        # (time, event id, market, price, venue) of every quote and fill
        for r in await self._pool.fetch(_PLANS):
            for step in _json(r["payload"])["plan"]["steps"]:
                base, quoted = market_of(step["assetIn"], step["assetOut"], quote)
                amounts = {step["assetIn"]: step["amountIn"], step["assetOut"]: step["amountOut"]}
                price = _price(amounts[base], amounts[quoted])
                if price is not None:
                    observations.append(
                        (r["time"], r["event_id"], f"{base}/{quoted}", price, step["venue"])
                    )
        fills = await self.fills()
        marks: list[tuple[Fill, str, Decimal, str]] = []
        for f in fills:
            base, quoted = market_of(f.asset_in, f.asset_out, quote)
            amounts = {f.asset_in: f.amount_in, f.asset_out: f.amount_out}
            price = _price(amounts[base], amounts[quoted])
            if price is not None:
                observations.append((f.time, f.event_id, f"{base}/{quoted}", price, f.venue))
                marks.append((f, f"{base}/{quoted}", price, amounts[base]))
        counts: dict[str, list[int]] = {}
        for _, _, m, _, _ in observations:
            counts.setdefault(m, [0, 0])[0] += 1
        for _, m, _, _ in marks:
            counts[m][1] += 1
        markets: list[dict[str, Any]] = [
            {"market": m, "observations": n, "fills": k}
            for m, (n, k) in sorted(counts.items(), key=lambda kv: (-kv[1][1], kv[0]))
        ]
        if market is None and markets:
            market = markets[0]["market"]
        line: dict[int, str] = {}
        for t, _, m, price, v in sorted(observations, key=lambda o: (o[0], o[1])):
            if m == market and (venue is None or v == venue):
                line[_seconds(t)] = _plain(_round(price))
        shown = (
            [
                {
                    "time": _seconds(f.time),
                    "ms": _ms(f.time),
                    "price": _plain(_round(price)),
                    "side": "buy" if f.asset_out == market.split("/")[0] else "sell",
                    "amount": base_amount,
                    "venue": f.venue,
                    "intentId": f.intent_id,
                    "strategyId": f.strategy,
                    "eventId": f.event_id,
                }
                for f, m, price, base_amount in marks
                if m == market and (venue is None or f.venue == venue)
            ]
            if market
            else []
        )
        return {
            "market": market,
            "venue": venue,
            "quoteAsset": quote,
            "markets": markets,
            "points": [{"time": t, "value": v} for t, v in sorted(line.items())],
            "fills": shown,
        }

    async def pnl(self, strategy: str | None) -> dict[str, Any]:
        """A strategy's realised and unrealised P&L and equity after each fill (each second's
        last): its holdings from its fills so far, valued at the latest fill price of each
        asset so far (any strategy's, else the topology's reference price), as ``/positions``
        values them now.  Equity: the quote asset held plus every holding's market value."""
        fills = await self.fills()
        strategies = sorted({f.strategy for f in fills if f.strategy})
        if strategy is None and strategies:
            strategy = strategies[0]
        latest: dict[str, tuple[tuple[int, str], Decimal]] = {}
        holdings: dict[str, Holding] = {}
        points: dict[int, dict[str, Any]] = {}
        quote = self.quote_asset
        for f in fills:
            guard = (_ms(f.time), f.event_id)  # the read model's price guard: later fill wins
            for asset, price in f.prices.items():
                if asset not in latest or latest[asset][0] < guard:
                    latest[asset] = (guard, Decimal(price))
            if f.strategy != strategy:
                if not holdings:
                    continue
            else:
                trade(holdings, f.as_position_fill(), quote, self.reference_prices)
            prices = self.reference_prices | {a: p for a, (_, p) in latest.items()}
            points[_seconds(f.time)] = {"time": _seconds(f.time), **self._value(holdings, prices)}
        return {
            "strategy": strategy,
            "strategies": strategies,
            "quoteAsset": quote,
            "points": list(points.values()),
        }

    def _value(
        self, holdings: Mapping[str, Holding], prices: Mapping[str, Decimal]
    ) -> dict[str, str]:
        # Through the stored form (``to_wire``, rounded) and ``valued``, as /positions does.
        realised = unrealised = equity = Decimal(0)
        for asset, holding in holdings.items():
            wire = (
                Holding(quantity=holding.quantity).to_wire()
                if asset == self.quote_asset
                else holding.to_wire()
            )
            shown = valued(wire, asset, self.quote_asset, prices.get(asset))
            realised += Decimal(shown["realisedPnl"] or "0")
            unrealised += Decimal(shown["unrealisedPnl"] or "0")
            equity += Decimal(shown["marketValue"] or "0")
        return {
            "realisedPnl": _plain(realised),
            "unrealisedPnl": _plain(unrealised),
            "pnl": _plain(realised + unrealised),
            "equity": _plain(equity),
        }

    async def states(self, bucket_s: int | None = None) -> dict[str, Any]:
        """Intents per lifecycle state at the end of each ``bucket_s``-second bucket that saw
        a change (buckets aligned to the epoch; auto: at most ``MAX_POINTS`` over the span).
        An intent's state is that of its highest-seq event so far, as in the read model."""
        rows = await self._pool.fetch(_STATES, list(_STATE_TOPICS))
        rows = sorted(rows, key=lambda r: (r["time"], r["event_id"]))
        if bucket_s is None:
            span = _seconds(rows[-1]["time"]) - _seconds(rows[0]["time"]) if rows else 0
            bucket_s = next((b for b in _NICE_BUCKETS if span / b <= MAX_POINTS), _NICE_BUCKETS[-1])
        current: dict[str, tuple[int, str]] = {}
        counts: dict[str, int] = {}
        points: dict[int, dict[str, int]] = {}
        for r in rows:
            seq, state = r["seq"], STATE_OF[r["topic"]] or ""
            before = current.get(r["correlation_id"])
            if before is not None and before[0] >= seq:
                continue
            if before is not None:
                counts[before[1]] -= 1
            current[r["correlation_id"]] = (seq, state)
            counts[state] = counts.get(state, 0) + 1
            start = _seconds(r["time"]) // bucket_s * bucket_s
            points[start] = {s: n for s, n in counts.items() if n}
        seen = sorted({s for p in points.values() for s in p})
        return {
            "bucketS": bucket_s,
            "states": seen,
            "points": [{"time": t, "counts": c} for t, c in sorted(points.items())],
        }


def since(points: Iterable[dict[str, Any]], after: int | None) -> list[dict[str, Any]]:
    """The points at or after ``after`` (seconds): the live tail asks for what it has not
    drawn, and the last point it drew again (that second may have grown)."""
    return [p for p in points if after is None or p["time"] >= after]


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-12")) if value.adjusted() < 12 else value


def _json(raw: Any) -> Any:
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw
