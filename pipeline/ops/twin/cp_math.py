"""Twin of ``rust_ops/src/cp_math.rs`` (and ``python/math.rs``): exact constant-product math.

:func:`out_given_in` and :func:`in_given_out` are the formulas, on ints already in range; the
route graph quotes its constant-product legs with them. :func:`amount_out` and
:func:`amount_in` are the operators as Python calls them, arguments checked first.
"""

from __future__ import annotations

from typing import SupportsIndex

from pipeline._rust_ops import PoolMathError
from pipeline.ops.twin.convert import U128_MAX, U128_RANGE, int_in
from pipeline.ops.twin.error import FEE_DENOMINATOR, error, fee_out_of_range

__all__ = ["amount_in", "amount_out", "in_given_out", "out_given_in"]


def _fee_factor(reserve_in: int, reserve_out: int, fee: int) -> int:
    """Validates fee and reserves; returns ``g = 1e6 - fee``."""
    if fee >= FEE_DENOMINATOR:
        raise fee_out_of_range(fee)
    if reserve_in == 0 or reserve_out == 0:
        raise error(
            PoolMathError,
            "zero_reserve",
            f"pool has a zero reserve (reserve_in={reserve_in}, "
            f"reserve_out={reserve_out}) and cannot quote",
        )
    return FEE_DENOMINATOR - fee


def out_given_in(reserve_in: int, reserve_out: int, amount_in: int, fee: int) -> int:
    """What paying ``amount_in`` in gives out, rounded down (``cp_math::amount_out``).

    Raises:
        PoolMathError: ``fee_out_of_range``, ``zero_reserve``.
    """
    g = _fee_factor(reserve_in, reserve_out, fee)
    in_with_fee = amount_in * g
    return in_with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + in_with_fee)


def in_given_out(reserve_in: int, reserve_out: int, amount_out: int, fee: int) -> int:
    """The least input that gives ``amount_out`` out, rounded up (``cp_math::amount_in``).

    Raises:
        PoolMathError: ``fee_out_of_range``, ``zero_reserve``, ``insufficient_liquidity``,
            ``input_overflow``.
    """
    g = _fee_factor(reserve_in, reserve_out, fee)
    if amount_out >= reserve_out:
        raise error(
            PoolMathError,
            "insufficient_liquidity",
            f"amount_out {amount_out} is not below reserve_out {reserve_out}: "
            "the pool cannot pay it out",
        )
    num = amount_out * reserve_in * FEE_DENOMINATOR
    need = -(-num // ((reserve_out - amount_out) * g))
    if need > U128_MAX:
        raise error(
            PoolMathError,
            "input_overflow",
            f"the input needed for amount_out {amount_out} against reserve_out "
            f"{reserve_out} exceeds 2**128-1",
        )
    return need


def _u128(value: SupportsIndex, field: str) -> int:
    v, ok = int_in(value, U128_MAX)
    if not ok:
        raise error(
            PoolMathError, "out_of_range", f"{field} must be an int in {U128_RANGE}, got {v}"
        )
    return v


def amount_out(
    reserve_in: SupportsIndex,
    reserve_out: SupportsIndex,
    amount_in: SupportsIndex,
    fee: SupportsIndex,
) -> int:
    """Twin of ``pipeline.ops.amount_out``."""
    ri, ro = _u128(reserve_in, "reserve_in"), _u128(reserve_out, "reserve_out")
    ai = _u128(amount_in, "amount_in")
    return out_given_in(ri, ro, ai, _u128(fee, "fee"))


def amount_in(
    reserve_in: SupportsIndex,
    reserve_out: SupportsIndex,
    amount_out: SupportsIndex,
    fee: SupportsIndex,
) -> int:
    """Twin of ``pipeline.ops.amount_in``."""
    ri, ro = _u128(reserve_in, "reserve_in"), _u128(reserve_out, "reserve_out")
    ao = _u128(amount_out, "amount_out")
    return in_given_out(ri, ro, ao, _u128(fee, "fee"))
