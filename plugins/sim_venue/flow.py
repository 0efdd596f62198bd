"""Other traders on the sim venue: a seeded random walk with trends, traded against its pools.

The sim venue's prices move only when someone trades, so on a quiet stack a strategy that
reads prices (momentum) sees a flat market.  With ``plugins.venues.sim.config.flow`` set,
the venue's market source trades against its own pools once per ``every_ms`` tick, as the
rest of a market would: real swaps in the ledger (fees paid, reserves and ``seq`` moved, a
fill recorded), which the planners, the risk marks and the strategies all see.

    tick k = now // every_ms, per pool:
        regime  = up | down | flat, drawn per block of ``regime_ticks`` ticks
                  (seeded by seed, pool, k // regime_ticks)
        step    = trend_bps (signed by the regime) + vol_bps * N(0, 1)    (log price, bps)
                  (seeded by seed, pool, k)
        trade   = the exact-in swap that moves the pool's mid price by ``step`` before its
                  fee: buy token0 with token1 * (exp(step / 2) - 1) of token1 when step > 0,
                  sell token0 * (exp(-step / 2) - 1) of token0 when step < 0

A trade is a function of (seed, pool, tick) and the reserves, and its submission's order ref
is ``flow-<pool>-<tick>``, inserted only if absent: several workers (each runs the venue's
market source) trade each tick once between them.  A tick no worker reached (all stopped) is
skipped, not caught up.  Floats here only draw the step; amounts are integer base units.
Off unless configured; with ``inject_failures`` also set, flow submissions count among the
numbered ones.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from plugins.sim_venue.amm import Pool

REGIMES = (1, -1, 0)
"""up, down, flat: the sign of the trend in a block of ticks."""


class MarketFlow(BaseModel):
    """``plugins.venues.sim.config.flow``: the rest of the market, trading on a schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every_ms: Annotated[int, Field(ge=100, le=3_600_000)] = 1_000
    """One trade per pool per tick of this length."""
    pools: tuple[str, ...] | None = None
    """The pools it trades (``None``: every pool of the venue)."""
    vol_bps: Annotated[float, Field(ge=0, le=500)] = 5.0
    """The noise of one tick's step of the log price, in basis points (standard deviation)."""
    trend_bps: Annotated[float, Field(ge=0, le=500)] = 5.0
    """The drift of one tick's step in an up or down regime, in basis points."""
    regime_ticks: Annotated[int, Field(ge=1)] = 120
    """Ticks per regime block (each block is up, down or flat)."""
    seed: int = 0


@dataclass(frozen=True)
class FlowTrade:
    """An exact-in swap through one pool, in base units."""

    pool_id: str
    token_in: str
    token_out: str
    amount_in: int


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def regime(flow: MarketFlow, pool_id: str, tick: int) -> int:
    """+1, -1 or 0: the trend's sign in the block holding ``tick``."""
    return _rng(flow.seed, pool_id, "regime", tick // flow.regime_ticks).choice(REGIMES)


def step_bps(flow: MarketFlow, pool_id: str, tick: int) -> float:
    """The tick's step of the log price, in basis points."""
    noise = _rng(flow.seed, pool_id, "step", tick).gauss(0.0, 1.0)
    return regime(flow, pool_id, tick) * flow.trend_bps + flow.vol_bps * noise


def flow_trade(flow: MarketFlow, pool: Pool, tick: int) -> FlowTrade | None:
    """The trade of ``tick`` on ``pool`` as it is now; ``None`` for less than a base unit."""
    step = step_bps(flow, pool.pool_id, tick) / 10_000
    if step >= 0:
        amount = int(pool.reserve1 * math.expm1(step / 2))
        trade = FlowTrade(pool.pool_id, pool.token1, pool.token0, amount)
    else:
        amount = int(pool.reserve0 * math.expm1(-step / 2))
        trade = FlowTrade(pool.pool_id, pool.token0, pool.token1, amount)
    return trade if trade.amount_in > 0 else None


def order_ref(pool_id: str, tick: int) -> str:
    """The submission of one tick's trade on one pool: the same in every worker."""
    return f"flow-{pool_id}-{tick}"
