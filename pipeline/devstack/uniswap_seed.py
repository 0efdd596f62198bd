"""What the dev chain is seeded with: tokens, pools, prices and liquidity ranges; and the math.

Prices follow the market roughly (WETH ≈ 3000 USDC, WBTC ≈ 60000 USDC = 20 WETH, DAI ≈ 1
USDC) so the pipeline's reference prices and risk limits make sense against them. Each pool
gets liquidity in several nested tick ranges around its price: swaps that move the price past
the narrow range cross initialised ticks, and a 1-10 WETH swap has a small (~0.01 %) but
nonzero price impact in the WETH/USDC pools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

MIN_TICK = -887272
MAX_TICK = 887272
TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}
"""Uniswap V3's fee tiers (hundredths of a bp) and their tick spacings; 100 is enabled by us."""

FULL_RANGE = 0
"""A ``Range.half_width`` meaning the whole price range."""


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int


TOKENS = (
    TokenSpec("USDC", "USD Coin (dev)", 6),
    TokenSpec("WBTC", "Wrapped BTC (dev)", 8),
    TokenSpec("DAI", "Dai Stablecoin (dev)", 18),
)
"""Test ERC20s; WETH is the real WETH9 contract."""


@dataclass(frozen=True)
class Range:
    half_width: int
    """Ticks each side of the price (rounded out to the tick spacing); ``FULL_RANGE``: all."""
    value: Decimal
    """What to deposit, in quote units, split about evenly between the two tokens."""


@dataclass(frozen=True)
class PoolSpec:
    base: str
    quote: str
    fee: int
    price: Decimal
    """Quote per one base, human units."""
    ranges: tuple[Range, ...]

    @property
    def pool_id(self) -> str:
        return f"{self.base}-{self.quote}-{self.fee}"


def _ranges(*pairs: tuple[int, str]) -> tuple[Range, ...]:
    return tuple(Range(width, Decimal(value)) for width, value in pairs)


POOLS = (
    PoolSpec(
        "WETH",
        "USDC",
        500,
        Decimal(3000),
        _ranges((60, "2000000"), (600, "10000000"), (6000, "20000000")),
    ),
    PoolSpec(
        "WETH",
        "USDC",
        3000,
        Decimal("3001.5"),
        _ranges((120, "500000"), (1200, "5000000"), (FULL_RANGE, "5000000")),
    ),
    PoolSpec(
        "WBTC",
        "WETH",
        3000,
        Decimal(20),
        _ranges((120, "200"), (1200, "2000"), (FULL_RANGE, "1000")),
    ),
    PoolSpec(
        "DAI",
        "USDC",
        100,
        Decimal(1),
        _ranges((10, "5000000"), (100, "10000000"), (1000, "5000000")),
    ),
    PoolSpec(
        "WBTC",
        "USDC",
        3000,
        Decimal(60000),
        _ranges((120, "500000"), (1200, "3000000"), (FULL_RANGE, "2000000")),
    ),
)


def sqrt_price_x96(price: Decimal, decimals0: int, decimals1: int) -> int:
    """Uniswap's ``sqrtPriceX96`` for ``price`` token1 per token0 in human units, exactly.

    The pool's price is in base units: ``price * 10**decimals1 / 10**decimals0``.
    """
    raw = Fraction(price) * Fraction(10**decimals1, 10**decimals0)
    return math.isqrt(raw.numerator * 2**192 // raw.denominator)


def tick_of(sqrt_price: int) -> int:
    """The tick at or below ``sqrt_price`` (float math is fine: it only places ranges)."""
    return math.floor(math.log((sqrt_price / 2**96) ** 2, 1.0001))


def tick_range(current: int, half_width: int, spacing: int) -> tuple[int, int]:
    """``[lower, upper)`` on the spacing grid around ``current``; the full range if 0."""
    if half_width == FULL_RANGE:
        edge = MAX_TICK // spacing * spacing
        return -edge, edge
    lower = (current - half_width) // spacing * spacing
    upper = -((-(current + half_width)) // spacing) * spacing
    return max(lower, -(MAX_TICK // spacing * spacing)), min(upper, MAX_TICK // spacing * spacing)


def deposit_amounts(spec: PoolSpec, value: Decimal, decimals: dict[str, int]) -> dict[str, int]:
    """Base units of each token for ``value`` quote units, half in each token.

    The position manager takes what the range needs at the price and leaves the rest, so
    the split need not be exact.
    """
    half = value / 2
    return {
        spec.quote: int(half.scaleb(decimals[spec.quote])),
        spec.base: int((half / spec.price).scaleb(decimals[spec.base])),
    }
