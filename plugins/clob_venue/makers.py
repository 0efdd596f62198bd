"""Simulated market makers: a moving reference price and the quote ladder around it.  Pure.

The reference price is a function of time alone (no state, no random draws), so every worker
process that shares a ledger computes the same price for the same moment, and a maker
refresh can be done by whichever process gets there first:

    log(p(t) / p0) = A * (0.6 sin(2πt/T + φ1) + 0.3 sin(2πt/(0.37 T) + φ2)
                          + 0.1 sin(2πt/(0.11 T) + φ3))

``A`` is ``volatility_bps`` / 10,000 and ``T`` is ``period_s``; the phases come from the
venue's seed and the market id.  Three incommensurate periods wander without repeating
visibly and stay within ±A of ``p0`` (a paper venue left running for a week does not drift
to zero).  Venues with the same seed see the same reference (competing exchanges quoting
one asset); their spreads, depths and fees differ.

A maker refreshes every ``refresh_ms``: it cancels its quotes and places a ladder of
``levels`` bids and asks around the reference as it was ``latency_ms`` earlier (a maker that
reacts late is the one arbitrageurs pick off).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from plugins.clob_venue.engine import Side

_WEIGHTS = ((0.6, 1.0), (0.3, 0.37), (0.1, 0.11))  # (weight, period as a fraction of T)


@dataclass(frozen=True)
class ReferencePath:
    start_price: float
    volatility_bps: float
    period_s: float
    phases: tuple[float, float, float]

    @classmethod
    def of(
        cls, seed: int, market_id: str, start_price: float, volatility_bps: float, period_s: float
    ) -> ReferencePath:
        digest = hashlib.sha256(f"{seed}/{market_id}".encode()).digest()
        phases = tuple(
            int.from_bytes(digest[i * 8 : (i + 1) * 8]) / 2**64 * 2 * math.pi for i in range(3)
        )
        return cls(start_price, volatility_bps, period_s, (phases[0], phases[1], phases[2]))

    def price_at(self, t_ms: float) -> float:
        t = t_ms / 1000
        wave = sum(
            weight * math.sin(2 * math.pi * t / (self.period_s * fraction) + phase)
            for (weight, fraction), phase in zip(_WEIGHTS, self.phases, strict=True)
        )
        return self.start_price * math.exp(self.volatility_bps / 10_000 * wave)


@dataclass(frozen=True)
class Quote:
    side: Side
    price: int
    """Ticks."""
    qty: int
    """Lots."""


@dataclass(frozen=True)
class Ladder:
    """How a maker quotes one market (units already in ticks and lots)."""

    spread_bps: Decimal
    """Best ask over best bid, around the reference (at least one tick)."""
    levels: int
    level_qty: int
    """Lots at the best level on each side."""
    size_growth: Decimal = Decimal(0)
    """Each level further out holds this fraction more than the best one (0.5: 1, 1.5, 2...)."""
    spacing_ticks: int = 1


def ladder(reference: float, tick_size: Decimal, spec: Ladder) -> list[Quote]:
    """The quotes around ``reference``: best bid and ask ``spread_bps`` apart, rounded away
    from the reference to whole ticks, then ``levels`` per side ``spacing_ticks`` apart.
    Bids at or below zero ticks are left out."""
    mid = Decimal(repr(reference)) / tick_size
    half = mid * spec.spread_bps / Decimal(20_000)
    bid = int((mid - half).to_integral_value(rounding=ROUND_FLOOR))
    ask = int((mid + half).to_integral_value(rounding=ROUND_CEILING))
    if ask <= bid:
        ask = bid + 1
    quotes = []
    for i in range(spec.levels):
        qty = int(spec.level_qty * (1 + spec.size_growth * i))
        if qty <= 0:
            continue
        if bid - i * spec.spacing_ticks > 0:
            quotes.append(Quote(Side.BUY, bid - i * spec.spacing_ticks, qty))
        quotes.append(Quote(Side.SELL, ask + i * spec.spacing_ticks, qty))
    return quotes


def refresh_epoch(now_ms: float, refresh_ms: int) -> int:
    """The number of the refresh period ``now_ms`` falls in."""
    return int(now_ms // refresh_ms)
