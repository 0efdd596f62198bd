"""Pure-Python twin of every Rust operator: same names, same fields, same results.

Used only by the tests (which hold both implementations to identical results, errors and reprs
included) and by the benchmarks (which report the Rust speed-up as a ratio). The runtime never
imports this module: ``pipeline.ops`` has no Python fallback.

The twin raises the compiled module's own exception classes, so ``except PoolMathError``
catches either implementation. Everything here mirrors ``rust_ops/src``; read that for the why.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import SupportsIndex, TypeVar

from pipeline._rust_ops import (
    InvalidPoolError,
    PoolMathError,
    RouteQueryError,
    RustOpsError,
)
from pipeline.ops.twin_books import (  # order books, in their own module
    Book,
    ConsolidatedBook,
    InvalidBookError,
    Sweep,
    SweepError,
    aggregate_books,
    sweep,
)
from pipeline.ops.twin_graph import (  # the route graph, in its own module
    GAS_BASE,
    GAS_CP_HOP,
    GAS_V3_HOP,
    GAS_V3_TICK,
    MAX_SPLITS,
    GraphLeg,
    GraphPath,
    GraphRoute,
    RouteGraph,
)
from pipeline.ops.twin_partition import kafka_partition  # Kafka's partitioner
from pipeline.ops.twin_v3 import (  # Uniswap V3 math, in its own module
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    InvalidV3PoolError,
    V3Pool,
    V3SwapResult,
    sqrt_ratio_at_tick,
    tick_at_sqrt_ratio,
    v3_amount_in,
    v3_amount_out,
)

__all__ = [
    "FEE_DENOMINATOR",
    "GAS_BASE",
    "GAS_CP_HOP",
    "GAS_V3_HOP",
    "GAS_V3_TICK",
    "MAX_HOPS",
    "MAX_SPLITS",
    "MAX_SQRT_RATIO",
    "MAX_TICK",
    "MIN_SQRT_RATIO",
    "MIN_TICK",
    "Book",
    "ConsolidatedBook",
    "GraphLeg",
    "GraphPath",
    "GraphRoute",
    "InvalidBookError",
    "InvalidPoolError",
    "InvalidV3PoolError",
    "Pool",
    "PoolMathError",
    "RouteGraph",
    "RouteQueryError",
    "RustOpsError",
    "Sweep",
    "SweepError",
    "V3Pool",
    "V3SwapResult",
    "aggregate_books",
    "amount_in",
    "amount_out",
    "kafka_partition",
    "sqrt_ratio_at_tick",
    "sweep",
    "tick_at_sqrt_ratio",
    "v3_amount_in",
    "v3_amount_out",
]

FEE_DENOMINATOR = 1_000_000
MAX_HOPS = 6
_DEFAULT_MAX_HOPS = 3
_U128_MAX = 2**128 - 1
_USIZE_MAX = 2**64 - 1
_U128_RANGE = "0..=2**128-1"
_FEE_HINT = "hundredths of a basis point: 3000 = 0.30 %"


_E = TypeVar("_E", bound=RustOpsError)


def _error(cls: type[_E], code: str, message: str) -> _E:
    err = cls(message)
    err.code = code
    return err


def _pool_error(pool_id: str, code: str, message: str) -> InvalidPoolError:
    err = _error(InvalidPoolError, code, f"pool '{pool_id}': {message}")
    err.pool_id = pool_id
    return err


def _int_in(value: SupportsIndex, top: int) -> tuple[int, bool]:
    """``operator.index(value)`` (TypeError if not an int) and whether it is in ``0..=top``."""
    v = operator.index(value)
    return v, 0 <= v <= top


# --- constant-product math (rust_ops/src/cp_math.rs) ---------------------------------------


def _math_u128(value: SupportsIndex, field: str) -> int:
    v, ok = _int_in(value, _U128_MAX)
    if not ok:
        raise _error(
            PoolMathError, "out_of_range", f"{field} must be an int in {_U128_RANGE}, got {v}"
        )
    return v


def _fee_error(fee: int) -> PoolMathError:
    return _error(
        PoolMathError, "fee_out_of_range", f"fee {fee} is outside 0..=999999 ({_FEE_HINT})"
    )


def _check(reserve_in: int, reserve_out: int, fee: int) -> int:
    """Validates fee and reserves; returns ``g = 1e6 - fee``."""
    if fee >= FEE_DENOMINATOR:
        raise _fee_error(fee)
    if reserve_in == 0 or reserve_out == 0:
        raise _error(
            PoolMathError,
            "zero_reserve",
            f"pool has a zero reserve (reserve_in={reserve_in}, reserve_out={reserve_out}) "
            "and cannot quote",
        )
    return FEE_DENOMINATOR - fee


def _amount_out(reserve_in: int, reserve_out: int, amount_in: int, fee: int) -> int:
    g = _check(reserve_in, reserve_out, fee)
    in_with_fee = amount_in * g
    return in_with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + in_with_fee)


def _amount_in(reserve_in: int, reserve_out: int, amount_out: int, fee: int) -> int:
    g = _check(reserve_in, reserve_out, fee)
    if amount_out >= reserve_out:
        raise _error(
            PoolMathError,
            "insufficient_liquidity",
            f"amount_out {amount_out} is not below reserve_out {reserve_out}: "
            "the pool cannot pay it out",
        )
    num = amount_out * reserve_in * FEE_DENOMINATOR
    den = (reserve_out - amount_out) * g
    need = -(-num // den)
    if need > _U128_MAX:
        raise _error(
            PoolMathError,
            "input_overflow",
            f"the input needed for amount_out {amount_out} against reserve_out "
            f"{reserve_out} exceeds 2**128-1",
        )
    return need


def amount_out(
    reserve_in: SupportsIndex,
    reserve_out: SupportsIndex,
    amount_in: SupportsIndex,
    fee: SupportsIndex,
) -> int:
    """Twin of ``pipeline.ops.amount_out``."""
    ri = _math_u128(reserve_in, "reserve_in")
    ro = _math_u128(reserve_out, "reserve_out")
    ai = _math_u128(amount_in, "amount_in")
    return _amount_out(ri, ro, ai, _math_u128(fee, "fee"))


def amount_in(
    reserve_in: SupportsIndex,
    reserve_out: SupportsIndex,
    amount_out: SupportsIndex,
    fee: SupportsIndex,
) -> int:
    """Twin of ``pipeline.ops.amount_in``."""
    ri = _math_u128(reserve_in, "reserve_in")
    ro = _math_u128(reserve_out, "reserve_out")
    ao = _math_u128(amount_out, "amount_out")
    return _amount_in(ri, ro, ao, _math_u128(fee, "fee"))


# --- pools (rust_ops/src/pool.rs) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pool:
    """Twin of ``pipeline.ops.Pool``."""

    pool_id: str
    venue: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee: int

    def __post_init__(self) -> None:
        for name in ("pool_id", "venue", "token0", "token1"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"argument '{name}': expected str")
        for name in ("reserve0", "reserve1", "fee"):
            v, ok = _int_in(getattr(self, name), _U128_MAX)
            if not ok:
                raise _pool_error(
                    self.pool_id, "out_of_range", f"{name} must be an int in {_U128_RANGE}, got {v}"
                )
            object.__setattr__(self, name, v)  # a plain int, as the Rust getters return
        if self.fee >= FEE_DENOMINATOR:
            raise _pool_error(
                self.pool_id,
                "fee_out_of_range",
                f"fee {self.fee} is outside 0..=999999 ({_FEE_HINT})",
            )
        if self.token0 == self.token1:
            raise _pool_error(
                self.pool_id, "same_token", f"token0 and token1 are both '{self.token0}'"
            )
