"""Twin of the Uniswap V3 operators (``rust_ops/src/v3``, ``python/v3.rs``): same names,
same results to the wei, same errors and reprs.

Python ints are unbounded, so every place where the contracts work modulo 2**256 or
``require`` a bound is checked explicitly, as the Rust code does; read ``rust_ops/src/v3`` for
the why. The sections follow its files: full_math, tick_math, sqrt_price_math, swap_math,
pool, error.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import SupportsIndex

from pipeline._rust_ops import InvalidV3PoolError, PoolMathError
from pipeline.ops.twin.convert import U128_MAX, U128_RANGE
from pipeline.ops.twin.error import FEE_DENOMINATOR, FEE_HINT, error

__all__ = [
    "MAX_SQRT_RATIO",
    "MAX_TICK",
    "MIN_SQRT_RATIO",
    "MIN_TICK",
    "InvalidV3PoolError",
    "V3Pool",
    "V3SwapResult",
    "sqrt_ratio_at_tick",
    "tick_at_sqrt_ratio",
    "v3_amount_in",
    "v3_amount_out",
]

MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
MAX_TICK_SPACING = 16383
_Q96 = 1 << 96
_U256_MAX = (1 << 256) - 1
_U160_MAX = (1 << 160) - 1
_I256_MAX = (1 << 255) - 1

_U160_RANGE = "0..=2**160-1"
_INT24_RANGE = "-8388608..=8388607"
_UINT24_RANGE = "0..=16777215"
_INT128_RANGE = "-2**127..=2**127-1"
_AMOUNT_RANGE = "0..=2**255-1"
_TICK_RANGE = "-887272..=887272"
_PRICE_RANGE = (
    "4295128739..=1461446703485210103287273052203988822378723970341 "
    "(MIN_SQRT_RATIO..MAX_SQRT_RATIO)"
)

_RATIOS = (
    0xFFF97272373D413259A46990580E213A,
    0xFFF2E50F5F656932EF12357CF3C7FDCC,
    0xFFE5CACA7E10E4E61C3624EAA0941CD0,
    0xFFCB9843D60F6159C9DB58835C926644,
    0xFF973B41FA98C081472E6896DFB254C0,
    0xFF2EA16466C96A3843EC78B326B52861,
    0xFE5DEE046A99A2A811C461F1969C3053,
    0xFCBE86C7900A88AEDCFFC83B479AA3A4,
    0xF987A7253AC413176F2B074CF7815E54,
    0xF3392B0822B70005940C7A398E4B70F3,
    0xE7159475A2C29B7443B29C7FA6E889D9,
    0xD097F3BDFD2022B8845AD8F792AA5825,
    0xA9F746462D870FDF8A65DC1F90E061E5,
    0x70D869A156D2A1B890BB3DF62BAF32F7,
    0x31BE135F97D08FD981231505542FCFA6,
    0x9AA508B5B7A84E1C677DE54F3E99BC9,
    0x5D6AF8DEDB81196699C329225EE604,
    0x2216E584F5FA1EA926041BEDFE98,
    0x48A170391F7DC42444E8FA2,
)


class _Revert(Exception):
    """Where the contract would revert on arithmetic (``None`` in the Rust code)."""


def _pool_error(code: str, message: str) -> InvalidV3PoolError:
    return error(InvalidV3PoolError, code, f"V3 pool: {message}")


def _math_error(code: str, message: str) -> PoolMathError:
    return error(PoolMathError, code, message)


# --- FullMath, TickMath (full_math.rs, tick_math.rs) --------------------------------------


def _mul_div(a: int, b: int, d: int) -> int:
    if d == 0 or a * b // d > _U256_MAX:
        raise _Revert
    return a * b // d


def _mul_div_up(a: int, b: int, d: int) -> int:
    if d == 0:
        raise _Revert
    q = -(-(a * b) // d)
    if q > _U256_MAX:
        raise _Revert
    return q


def _div_up(x: int, y: int) -> int:
    if y == 0:
        raise _Revert
    return -(-x // y)


def _ratio_at(tick: int) -> int | None:
    a = abs(tick)
    if a > MAX_TICK:
        return None
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if a & 1 else 1 << 128
    for i, c in enumerate(_RATIOS):
        if a & (2 << i):
            ratio = ratio * c >> 128
    if tick > 0:
        ratio = _U256_MAX // ratio
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def _tick_at(price: int) -> int | None:
    if price < MIN_SQRT_RATIO or price >= MAX_SQRT_RATIO:
        return None
    estimate = math.floor((math.log2(price) - 96) * math.log(2) / math.log(1.0001) * 2)
    tick = min(max(estimate, MIN_TICK), MAX_TICK - 1)
    while tick > MIN_TICK and _ratio_at(tick) > price:  # type: ignore[operator]
        tick -= 1
    while tick < MAX_TICK and _ratio_at(tick + 1) <= price:  # type: ignore[operator]
        tick += 1
    return tick


# --- SqrtPriceMath, SwapMath (sqrt_price_math.rs, swap_math.rs) ---------------------------


def _next_from_amount0(p: int, liquidity: int, amount: int, add: bool) -> int:
    if amount == 0:
        return p
    n1 = liquidity << 96
    product = amount * p
    if add:
        if product <= _U256_MAX and n1 + product <= _U256_MAX:
            return _mul_div_up(n1, p, n1 + product)
        denominator = n1 // p + amount
        if denominator > _U256_MAX:
            raise _Revert
        return _div_up(n1, denominator)
    if product > _U256_MAX or n1 <= product:
        raise _Revert
    nxt = _mul_div_up(n1, p, n1 - product)
    if nxt > _U160_MAX:
        raise _Revert
    return nxt


def _next_from_amount1(p: int, liquidity: int, amount: int, add: bool) -> int:
    small = amount <= _U160_MAX
    if add:
        q = (amount << 96) // liquidity if small else _mul_div(amount, _Q96, liquidity)
        if p + q > _U160_MAX:
            raise _Revert
        return p + q
    q = _div_up(amount << 96, liquidity) if small else _mul_div_up(amount, _Q96, liquidity)
    if p <= q:
        raise _Revert
    return p - q


def _amount0(a: int, b: int, liquidity: int, up: bool) -> int:
    a, b = min(a, b), max(a, b)
    if a == 0:
        raise _Revert
    n1 = liquidity << 96
    if up:
        return _div_up(_mul_div_up(n1, b - a, b), a)
    return _mul_div(n1, b - a, b) // a


def _amount1(a: int, b: int, liquidity: int, up: bool) -> int:
    a, b = min(a, b), max(a, b)
    return (_mul_div_up if up else _mul_div)(liquidity, b - a, _Q96)


def _swap_step(
    current: int, target: int, liquidity: int, remaining: int, exact_in: bool, fee: int
) -> tuple[int, int, int, int]:
    """``computeSwapStep``: (next price, amount in, amount out, fee amount)."""
    zero_for_one = current >= target
    less_fee = FEE_DENOMINATOR - fee
    range_in = range_out = 0
    if exact_in:
        remaining_less_fee = _mul_div(remaining, less_fee, FEE_DENOMINATOR)
        range_in = (
            _amount0(target, current, liquidity, True)
            if zero_for_one
            else _amount1(current, target, liquidity, True)
        )
        if remaining_less_fee >= range_in:
            nxt = target
        elif liquidity == 0:
            raise _Revert
        elif zero_for_one:
            nxt = _next_from_amount0(current, liquidity, remaining_less_fee, True)
        else:
            nxt = _next_from_amount1(current, liquidity, remaining_less_fee, True)
    else:
        range_out = (
            _amount1(target, current, liquidity, False)
            if zero_for_one
            else _amount0(current, target, liquidity, False)
        )
        if remaining >= range_out:
            nxt = target
        elif liquidity == 0:
            raise _Revert
        elif zero_for_one:
            nxt = _next_from_amount1(current, liquidity, remaining, False)
        else:
            nxt = _next_from_amount0(current, liquidity, remaining, False)
    reached = nxt == target
    if zero_for_one:
        amount_in = range_in if reached and exact_in else _amount0(nxt, current, liquidity, True)
        amount_out = (
            range_out if reached and not exact_in else _amount1(nxt, current, liquidity, False)
        )
    else:
        amount_in = range_in if reached and exact_in else _amount1(current, nxt, liquidity, True)
        amount_out = (
            range_out if reached and not exact_in else _amount0(current, nxt, liquidity, False)
        )
    if not exact_in and amount_out > remaining:
        amount_out = remaining
    if exact_in and not reached:
        fee_amount = remaining - amount_in
    else:
        fee_amount = _mul_div_up(amount_in, fee, less_fee)
    return nxt, amount_in, amount_out, fee_amount


# --- the pool (pool.rs) ---------------------------------------------------------------------


def _index(value: SupportsIndex) -> int:
    return operator.index(value)


def _next_initialized(
    ticks: tuple[tuple[int, int], ...], keys: list[int], tick: int, spacing: int, lte: bool
) -> tuple[int, int | None]:
    compressed = tick // spacing
    if lte:
        word_start = (compressed >> 8) << 8
        at = bisect_right(keys, compressed * spacing)
        if at > 0 and keys[at - 1] >= word_start * spacing:
            return keys[at - 1], at - 1
        return word_start * spacing, None
    start = compressed + 1
    word_end = ((start >> 8) << 8) + 255
    at = bisect_left(keys, start * spacing)
    if at < len(keys) and keys[at] <= word_end * spacing:
        return keys[at], at
    return word_end * spacing, None


@dataclass(frozen=True)
class V3SwapResult:
    """What a V3 swap does; see ``pipeline/_rust_ops.pyi``."""

    amount_in_used: int
    amount_out: int
    fee_amount: int
    sqrt_price_after: int
    tick_after: int
    liquidity_after: int
    ticks_crossed: int


@dataclass(frozen=True, init=False)
class V3Pool:
    """A Uniswap V3 pool state; see ``pipeline/_rust_ops.pyi``."""

    sqrt_price_x96: int
    liquidity: int
    tick: int
    tick_spacing: int
    fee: int
    ticks: tuple[tuple[int, int], ...] | None

    def __init__(
        self,
        sqrt_price_x96: SupportsIndex,
        liquidity: SupportsIndex,
        tick: SupportsIndex,
        tick_spacing: SupportsIndex,
        fee: SupportsIndex,
        ticks: Iterable[tuple[SupportsIndex, SupportsIndex]] | None = None,
    ) -> None:
        def bounded(value: SupportsIndex, field: str, lo: int, hi: int, range_: str) -> int:
            v = _index(value)
            if not lo <= v <= hi:
                raise _pool_error("out_of_range", f"{field} must be an int in {range_}, got {v}")
            return v

        def int24(value: SupportsIndex, field: str) -> int:
            return bounded(value, field, -(1 << 23), (1 << 23) - 1, _INT24_RANGE)

        price = bounded(sqrt_price_x96, "sqrt_price_x96", 0, _U160_MAX, _U160_RANGE)
        active = bounded(liquidity, "liquidity", 0, U128_MAX, U128_RANGE)
        t = int24(tick, "tick")
        spacing = int24(tick_spacing, "tick_spacing")
        f = bounded(fee, "fee", 0, (1 << 24) - 1, _UINT24_RANGE)
        pairs: tuple[tuple[int, int], ...] | None = None
        if ticks is not None:
            out = []
            for i, item in enumerate(ticks):
                if not isinstance(item, tuple) or len(item) != 2:
                    raise TypeError(f"ticks[{i}] must be a (tick, liquidity_net) tuple")
                out.append(
                    (
                        int24(item[0], f"ticks[{i}].tick"),
                        bounded(
                            item[1],
                            f"ticks[{i}].liquidity_net",
                            -(1 << 127),
                            (1 << 127) - 1,
                            _INT128_RANGE,
                        ),
                    )
                )
            pairs = tuple(out)
        _check(price, active, t, spacing, f, pairs)
        for name, value in (
            ("sqrt_price_x96", price),
            ("liquidity", active),
            ("tick", t),
            ("tick_spacing", spacing),
            ("fee", f),
            ("ticks", pairs),
        ):
            object.__setattr__(self, name, value)

    def swap_exact_in(
        self,
        zero_for_one: bool,
        amount_in: SupportsIndex,
        sqrt_price_limit_x96: SupportsIndex | None = None,
    ) -> V3SwapResult:
        """Swap exactly ``amount_in``; see ``pipeline/_rust_ops.pyi``."""
        return self._swap(zero_for_one, True, amount_in, sqrt_price_limit_x96)

    def swap_exact_out(
        self,
        zero_for_one: bool,
        amount_out: SupportsIndex,
        sqrt_price_limit_x96: SupportsIndex | None = None,
    ) -> V3SwapResult:
        """Swap for exactly ``amount_out``; see ``pipeline/_rust_ops.pyi``."""
        return self._swap(zero_for_one, False, amount_out, sqrt_price_limit_x96)

    def _swap(
        self, zero_for_one: bool, exact_in: bool, amount: SupportsIndex, limit: SupportsIndex | None
    ) -> V3SwapResult:
        _bool(zero_for_one)
        x = _amount(amount, "amount_in" if exact_in else "amount_out")
        lim = (
            None if limit is None else _uint(limit, "sqrt_price_limit_x96", _U160_MAX, _U160_RANGE)
        )
        try:
            return _swap(self, zero_for_one, exact_in, x, lim)
        except _Revert:
            raise _math_error("overflow", "swap step overflows (the pool would revert)") from None


def _uint(value: SupportsIndex, field: str, top: int, range_: str) -> int:
    v = _index(value)
    if not 0 <= v <= top:
        raise _math_error("out_of_range", f"{field} must be an int in {range_}, got {v}")
    return v


def _amount(value: SupportsIndex, field: str) -> int:
    return _uint(value, field, _I256_MAX, _AMOUNT_RANGE)


def _check(
    price: int,
    liquidity: int,
    tick: int,
    spacing: int,
    fee: int,
    ticks: tuple[tuple[int, int], ...] | None,
) -> None:
    if fee >= FEE_DENOMINATOR:
        raise _pool_error("fee_out_of_range", f"fee {fee} is outside 0..=999999 ({FEE_HINT})")
    if not 1 <= spacing <= MAX_TICK_SPACING:
        raise _pool_error(
            "tick_spacing_out_of_range", f"tick_spacing {spacing} is outside 1..=16383"
        )
    expected = _tick_at(price)
    if expected is None:
        raise _pool_error(
            "sqrt_price_out_of_range",
            f"sqrt_price_x96 {price} is outside MIN_SQRT_RATIO..MAX_SQRT_RATIO "
            f"({MIN_SQRT_RATIO}..{MAX_SQRT_RATIO})",
        )
    if tick != expected and not (tick == expected - 1 and _ratio_at(expected) == price):
        raise _pool_error(
            "tick_mismatch",
            f"tick {tick} does not match sqrt_price_x96, whose "
            f"tick is {expected}; read slot0's tick and price together",
        )
    if ticks is None:
        return
    running = active = 0
    for index, (t, net) in enumerate(ticks):
        if not MIN_TICK <= t <= MAX_TICK or t % spacing != 0:
            raise _pool_error(
                "tick_not_usable",
                f"ticks[{index}] = {t} is not a multiple of "
                f"tick_spacing {spacing} in -887272..=887272",
            )
        if index > 0 and t <= ticks[index - 1][0]:
            raise _pool_error(
                "ticks_not_sorted",
                f"ticks[{index}] = {t} is not above the tick "
                "before it; give the initialised ticks once each, sorted",
            )
        running += net
        if not 0 <= running < 1 << 128:
            raise _inconsistent(t)
        if t <= tick:
            active = running
    if running != 0:
        raise _inconsistent(ticks[-1][0] if ticks else 0)
    if active != liquidity:
        raise _pool_error(
            "liquidity_mismatch",
            f"liquidity {liquidity} differs from {active}, "
            "the sum of liquidity_net at or below the current tick; read them at "
            "the same block",
        )


def _inconsistent(tick: int) -> InvalidV3PoolError:
    return _pool_error(
        "liquidity_net_inconsistent",
        f"liquidity_net values are inconsistent "
        f"at tick {tick} (the running sum must stay in 0..=2**128-1 and end at "
        "0); some initialised ticks are missing",
    )


def _swap(
    pool: V3Pool, zero_for_one: bool, exact_in: bool, amount: int, limit: int | None
) -> V3SwapResult:
    p = pool.sqrt_price_x96
    if limit is None:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    ok = (MIN_SQRT_RATIO < limit < p) if zero_for_one else (p < limit < MAX_SQRT_RATIO)
    if not ok:
        side = (
            "below the price and above MIN_SQRT_RATIO"
            if zero_for_one
            else "above the price and below MAX_SQRT_RATIO"
        )
        raise _math_error(
            "price_limit",
            f"sqrt_price_limit_x96 {limit} must be {side} ({p}) for zero_for_one={zero_for_one}",
        )
    remaining, calculated, fees = amount, 0, 0
    tick, liquidity, crossed = pool.tick, pool.liquidity, 0
    spacing = pool.tick_spacing

    def step(target: int) -> None:
        nonlocal p, remaining, calculated, fees
        p, a_in, a_out, fee = _swap_step(p, target, liquidity, remaining, exact_in, pool.fee)
        spent, got = (a_in + fee, a_out) if exact_in else (a_out, a_in + fee)
        remaining -= spent
        calculated += got
        if calculated > _I256_MAX:
            raise _Revert
        fees += fee

    if pool.ticks is not None:
        ticks = pool.ticks
        keys = [t for t, _ in ticks]
        while remaining != 0 and p != limit:
            start = p
            nxt, initialised = _next_initialized(ticks, keys, tick, spacing, zero_for_one)
            tick_next = min(max(nxt, MIN_TICK), MAX_TICK)
            price_next = _ratio_at(tick_next)
            assert price_next is not None
            beyond = price_next < limit if zero_for_one else price_next > limit
            step(limit if beyond else price_next)
            if p == price_next:
                if initialised is not None:
                    net = ticks[initialised][1]
                    liquidity += -net if zero_for_one else net
                    if not 0 <= liquidity < 1 << 128:
                        raise _Revert
                    crossed += 1
                tick = tick_next - 1 if zero_for_one else tick_next
            elif p != start:
                tick = _tick_at(p)  # type: ignore[assignment]
    elif remaining != 0:
        lower = tick // spacing * spacing
        upper = lower + spacing
        edge = max(lower, MIN_TICK) if zero_for_one else min(upper, MAX_TICK)
        edge_price = _ratio_at(edge)
        assert edge_price is not None
        edge_first = edge_price >= limit if zero_for_one else edge_price <= limit
        start = p
        step(edge_price if edge_first else limit)
        if edge_first and p == edge_price:
            raise _math_error(
                "range_exceeded",
                f"the swap leaves ticks [{lower}, {upper}), the "
                "only range where the pool's liquidity is known without tick "
                "data; give the pool its initialised ticks",
            )
        if p != start:
            tick = _tick_at(p)  # type: ignore[assignment]
    done = amount - remaining
    amount_in, amount_out = (done, calculated) if exact_in else (calculated, done)
    return V3SwapResult(amount_in, amount_out, fees, p, tick, liquidity, crossed)


def _bool(zero_for_one: bool) -> None:
    if not isinstance(zero_for_one, bool):
        raise TypeError(f"zero_for_one must be a bool, got {type(zero_for_one).__name__}")


def v3_amount_out(pool: V3Pool, zero_for_one: bool, amount_in: SupportsIndex) -> int:
    """Output of spending exactly ``amount_in``; see ``pipeline/_rust_ops.pyi``."""
    _bool(zero_for_one)
    x = _amount(amount_in, "amount_in")
    r = pool.swap_exact_in(zero_for_one, x)
    if r.amount_in_used != x:
        raise _math_error(
            "insufficient_liquidity",
            f"the pool's liquidity runs out: amount_in "
            f"{x} asked, only {r.amount_in_used} can be swapped",
        )
    return r.amount_out


def v3_amount_in(pool: V3Pool, zero_for_one: bool, amount_out: SupportsIndex) -> int:
    """Input needed to receive exactly ``amount_out``; see ``pipeline/_rust_ops.pyi``."""
    _bool(zero_for_one)
    x = _amount(amount_out, "amount_out")
    r = pool.swap_exact_out(zero_for_one, x)
    if r.amount_out != x:
        raise _math_error(
            "insufficient_liquidity",
            f"the pool's liquidity runs out: amount_out "
            f"{x} asked, only {r.amount_out} can be swapped",
        )
    return r.amount_in_used


def sqrt_ratio_at_tick(tick: SupportsIndex) -> int:
    """``TickMath.getSqrtRatioAtTick``; see ``pipeline/_rust_ops.pyi``."""
    t = _index(tick)
    ratio = _ratio_at(t)
    if ratio is None:
        raise _math_error("out_of_range", f"tick must be an int in {_TICK_RANGE}, got {t}")
    return ratio


def tick_at_sqrt_ratio(sqrt_price_x96: SupportsIndex) -> int:
    """``TickMath.getTickAtSqrtRatio``; see ``pipeline/_rust_ops.pyi``."""
    p = _index(sqrt_price_x96)
    tick = _tick_at(p) if p >= 0 else None
    if tick is None:
        raise _math_error(
            "out_of_range", f"sqrt_price_x96 must be an int in {_PRICE_RANGE}, got {p}"
        )
    return tick
