"""The data of the twin's route graph (``rust_ops/src/graph/mod.rs``): its limits and gas
model, the result types, and a pool as the graph holds it, with the spot bounds the search
prunes by."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.ops.twin.convert import U128_MAX
from pipeline.ops.twin.error import FEE_DENOMINATOR
from pipeline.ops.twin.v3 import MAX_TICK, MIN_TICK, V3Pool, sqrt_ratio_at_tick

__all__ = [
    "DEFAULT_MAX_HOPS",
    "GAS_BASE",
    "GAS_CP_HOP",
    "GAS_V3_HOP",
    "GAS_V3_TICK",
    "MAX_HOPS",
    "MAX_SPLITS",
    "SPLIT_CHUNKS",
    "Bound",
    "GraphLeg",
    "GraphPath",
    "GraphPool",
    "GraphRoute",
    "v3_most",
]

MAX_HOPS = 6
DEFAULT_MAX_HOPS = 3
MAX_SPLITS = 8
SPLIT_CHUNKS = 20
GAS_BASE = 21_000
GAS_CP_HOP = 60_000
GAS_V3_HOP = 100_000
GAS_V3_TICK = 25_000

# A bound on a leg's or a path's output, ``x -> rate*x / (1 + rate*x*inv_cap)``, never more
# than ``most`` (``Bound`` in search/bounds.rs): ``(rate, inv_cap, most)``.
Bound = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class GraphLeg:
    """Twin of ``pipeline.ops.GraphLeg``."""

    pool_id: str
    venue: str
    kind: str
    token_in: str
    token_out: str
    zero_for_one: bool
    amount_in: int
    amount_out: int
    ticks_crossed: int
    gas: int
    fee: int


@dataclass(frozen=True, slots=True)
class GraphPath:
    """Twin of ``pipeline.ops.GraphPath``."""

    legs: tuple[GraphLeg, ...]
    amount_in: int
    amount_out: int
    mid_price_num: int
    mid_price_den: int
    price_impact_ppm: int
    gas: int


@dataclass(frozen=True, slots=True)
class GraphRoute:
    """Twin of ``pipeline.ops.GraphRoute``."""

    paths: tuple[GraphPath, ...]
    amount_in: int
    amount_out: int
    mid_price_num: int
    mid_price_den: int
    price_impact_ppm: int
    gas: int


class GraphPool:
    """A pool as the graph holds it: ``cp`` is ``(reserve0, reserve1, fee)`` or ``v3`` is set;
    ``bound`` the search's bounds ``(token0 out, token1 out)`` (``spot_rates`` and
    ``spot_caps``, ``spot_most`` in mod.rs): the spot rate net of the fee, ``1 / cap``, and the
    most the pool pays out."""

    __slots__ = ("bound", "cp", "pool_id", "token0", "token1", "v3", "venue")

    def __init__(
        self,
        pool_id: str,
        venue: str,
        token0: str,
        token1: str,
        cp: tuple[int, int, int] | None,
        v3: V3Pool | None,
    ) -> None:
        self.pool_id, self.venue, self.token0, self.token1 = pool_id, venue, token0, token1
        self.cp, self.v3 = cp, v3
        if cp is not None:
            r0, r1, fee = cp
            gamma = max(0, FEE_DENOMINATOR - fee) / FEE_DENOMINATOR
            rate = (r0 / r1 * gamma, r1 / r0 * gamma) if r0 and r1 else (0.0, 0.0)
            inv = (1.0 / r0 if r0 else math.inf, 1.0 / r1 if r1 else math.inf)
            pays = (float(r0), float(r1))
        else:
            assert v3 is not None
            gamma = max(0, FEE_DENOMINATOR - v3.fee) / FEE_DENOMINATOR
            sp = v3.sqrt_price_x96 / 2**96
            rate = (gamma / (sp * sp), sp * sp * gamma)
            # The largest range liquidity: every range's is a running sum of the nets.
            largest, running = float(v3.liquidity), 0.0
            for _, net in v3.ticks or ():
                running += net
                largest = max(largest, running)
            largest *= 1.0 + 1e-12
            inv = (sp / largest, 1.0 / (largest * sp)) if largest > 0 else (math.inf, math.inf)
            pays = (v3_most(v3, False), v3_most(v3, True))
        self.bound: tuple[Bound, Bound] = ((rate[0], inv[0], pays[0]), (rate[1], inv[1], pays[1]))

    def gas(self, ticks: int) -> int:
        """Gas of a leg through the pool that crosses ``ticks`` initialised ticks."""
        return GAS_CP_HOP if self.cp is not None else GAS_V3_HOP + GAS_V3_TICK * ticks


def v3_most(pool: V3Pool, zero_for_one: bool) -> float:
    """What a V3 pool holds in the direction of the swap, an upper bound on what it pays:
    token1 if ``zero_for_one``, token0 otherwise (``v3_most`` in mod.rs)."""

    def held(liquidity: int, near: float, far: float) -> float:
        amount = liquidity * (near - far) if zero_for_one else liquidity * (1.0 / near - 1.0 / far)
        return max(amount, 0.0)

    sp = pool.sqrt_price_x96 / 2**96
    liquidity = most_l = pool.liquidity
    ranges = 1.0
    if pool.ticks is None:
        lower = pool.tick // pool.tick_spacing * pool.tick_spacing
        edge = lower if zero_for_one else lower + pool.tick_spacing
        edge = min(max(edge, MIN_TICK), MAX_TICK)
        total = held(liquidity, sp, sqrt_ratio_at_tick(edge) / 2**96)
    else:
        below = [t for t in pool.ticks if t[0] <= pool.tick]
        crossed = below[::-1] if zero_for_one else [t for t in pool.ticks if t[0] > pool.tick]
        total, near = 0.0, sp
        for tick, net in crossed:
            far = sqrt_ratio_at_tick(tick) / 2**96
            total += held(liquidity, near, far)
            ranges += 1.0
            near = far
            liquidity += -net if zero_for_one else net
            if not 0 <= liquidity <= U128_MAX:
                return math.inf
            most_l = max(most_l, liquidity)
        if liquidity > 0:
            return math.inf
    virtual_reserve = most_l * (sp if zero_for_one else 1.0 / sp)
    return total * (1.0 + 1e-9) + virtual_reserve * 1e-12 * ranges + 1.0
