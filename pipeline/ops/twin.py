"""Pure-Python twin of every Rust operator: same names, same fields, same results.

Used only by the tests (which hold both implementations to identical results, errors and reprs
included) and by the benchmarks (which report the Rust speed-up as a ratio). The runtime never
imports this module: ``pipeline.ops`` has no Python fallback.

The twin raises the compiled module's own exception classes, so ``except PoolMathError``
catches either implementation. Everything here mirrors ``rust_ops/src``; read that for the why.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable
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
    "PoolSet",
    "Route",
    "RouteGraph",
    "RouteLeg",
    "RouteQueryError",
    "RustOpsError",
    "Sweep",
    "SweepError",
    "V3Pool",
    "V3SwapResult",
    "aggregate_books",
    "amount_in",
    "amount_out",
    "best_route_exact_in",
    "best_route_exact_out",
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


# --- routes (rust_ops/src/route.rs) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteLeg:
    """Twin of ``pipeline.ops.RouteLeg``."""

    pool_id: str
    venue: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int


@dataclass(frozen=True, slots=True)
class Route:
    """Twin of ``pipeline.ops.Route``."""

    legs: tuple[RouteLeg, ...]
    amount_in: int
    amount_out: int
    mid_price_num: int
    mid_price_den: int
    price_impact_ppm: int


# A leg under search: (pool index, zero_for_one, amount_in, amount_out).
_Step = tuple[int, bool, int, int]


class PoolSet:
    """Twin of ``pipeline.ops.PoolSet``."""

    __slots__ = ("_adjacency", "_pools", "_rank")

    def __init__(self, pools: Iterable[Pool]) -> None:
        self._pools = tuple(pools)
        for p in self._pools:
            if not isinstance(p, Pool):
                raise TypeError(f"'{type(p).__name__}' object cannot be converted to 'Pool'")
        order = sorted(range(len(self._pools)), key=lambda i: self._pools[i].pool_id)
        for a, b in itertools.pairwise(order):
            if self._pools[a].pool_id == self._pools[b].pool_id:
                pool_id = self._pools[b].pool_id
                err = _error(
                    InvalidPoolError,
                    "duplicate_pool_id",
                    f"pool id '{pool_id}' appears more than once; pool ids must be unique",
                )
                err.pool_id = pool_id
                raise err
        self._rank = [0] * len(self._pools)
        for r, i in enumerate(order):
            self._rank[i] = r
        # token -> [(pool index, other token, zero_for_one)], quotable pools only.
        self._adjacency: dict[str, list[tuple[int, str, bool]]] = {}
        for i, p in enumerate(self._pools):
            self._adjacency.setdefault(p.token0, [])
            self._adjacency.setdefault(p.token1, [])
            if p.reserve0 and p.reserve1:
                self._adjacency[p.token0].append((i, p.token1, True))
                self._adjacency[p.token1].append((i, p.token0, False))

    @property
    def pools(self) -> tuple[Pool, ...]:
        return self._pools

    def __len__(self) -> int:
        return len(self._pools)

    def __repr__(self) -> str:
        return f"PoolSet({len(self._pools)} pools)"

    def best_route_exact_in(
        self,
        token_in: str,
        token_out: str,
        amount_in: SupportsIndex,
        max_hops: SupportsIndex = _DEFAULT_MAX_HOPS,
    ) -> Route | None:
        """Twin of ``pipeline.ops.PoolSet.best_route_exact_in``."""
        amount, hops = _query(token_in, token_out, amount_in, "amount_in", max_hops)
        if token_in not in self._adjacency or token_out not in self._adjacency:
            return None
        best: list[tuple[int, list[_Step]]] = []
        path: list[_Step] = []
        visited = {token_in}

        def forward(token: str, have: int) -> None:
            last = len(path) + 1 >= hops  # the last allowed leg must reach the goal
            for i, to, zero_for_one in self._adjacency[token]:
                if to in visited or (last and to != token_out):
                    continue
                r_in, r_out = self._reserves(i, zero_for_one)
                out = _amount_out(r_in, r_out, have, self._pools[i].fee)
                if out == 0:
                    continue
                path.append((i, zero_for_one, have, out))
                if to == token_out:
                    self._offer(best, out, path, operator.gt)
                elif len(path) < hops:
                    visited.add(to)
                    forward(to, out)
                    visited.remove(to)
                path.pop()

        forward(token_in, amount)
        return self._route(best[0][1]) if best else None

    def best_route_exact_out(
        self,
        token_in: str,
        token_out: str,
        amount_out: SupportsIndex,
        max_hops: SupportsIndex = _DEFAULT_MAX_HOPS,
    ) -> Route | None:
        """Twin of ``pipeline.ops.PoolSet.best_route_exact_out``."""
        amount, hops = _query(token_in, token_out, amount_out, "amount_out", max_hops)
        if token_in not in self._adjacency or token_out not in self._adjacency:
            return None
        best: list[tuple[int, list[_Step]]] = []
        path: list[_Step] = []  # goal-first while searching
        visited = {token_out}

        def backward(token: str, want: int) -> None:
            last = len(path) + 1 >= hops
            for i, prev, edge_zero_for_one in self._adjacency[token]:
                if prev in visited or (last and prev != token_in):
                    continue
                zero_for_one = not edge_zero_for_one  # the leg trades prev -> token
                r_in, r_out = self._reserves(i, zero_for_one)
                try:
                    need = _amount_in(r_in, r_out, want, self._pools[i].fee)
                except PoolMathError:
                    continue
                path.append((i, zero_for_one, need, want))
                if prev == token_in:
                    self._offer(best, need, path[::-1], operator.lt)
                elif len(path) < hops:
                    visited.add(prev)
                    backward(prev, need)
                    visited.remove(prev)
                path.pop()

        backward(token_out, amount)
        return self._route(best[0][1]) if best else None

    def _reserves(self, i: int, zero_for_one: bool) -> tuple[int, int]:
        p = self._pools[i]
        return (p.reserve0, p.reserve1) if zero_for_one else (p.reserve1, p.reserve0)

    def _offer(
        self,
        best: list[tuple[int, list[_Step]]],
        amount: int,
        path: list[_Step],
        better: Callable[[int, int], bool],
    ) -> None:
        """Keeps ``path`` (trading order) if it wins on amount, then hops, then pool ids."""
        if best:
            best_amount, best_path = best[0]
            if amount != best_amount:
                wins = better(amount, best_amount)
            elif len(path) != len(best_path):
                wins = len(path) < len(best_path)
            else:
                wins = [self._rank[s[0]] for s in path] < [self._rank[s[0]] for s in best_path]
            if not wins:
                return
        best[:] = [(amount, list(path))]

    def _route(self, path: list[_Step]) -> Route:
        num = den = 1
        legs = []
        for i, zero_for_one, leg_in, leg_out in path:
            p = self._pools[i]
            r_in, r_out = self._reserves(i, zero_for_one)
            num *= r_out
            den *= r_in
            t_in, t_out = (p.token0, p.token1) if zero_for_one else (p.token1, p.token0)
            legs.append(RouteLeg(p.pool_id, p.venue, t_in, t_out, leg_in, leg_out))
        g = math.gcd(num, den)
        num, den = num // g, den // g
        a_in, a_out = legs[0].amount_in, legs[-1].amount_out
        mid, executed = a_in * num, a_out * den
        impact = 0 if mid == 0 or executed >= mid else (mid - executed) * 1_000_000 // mid
        return Route(tuple(legs), a_in, a_out, num, den, impact)


def _query(
    token_in: str, token_out: str, amount: SupportsIndex, field: str, max_hops: SupportsIndex
) -> tuple[int, int]:
    """Checks a route query in the Rust order; returns ``(amount, max_hops)``."""
    if not isinstance(token_in, str) or not isinstance(token_out, str):
        raise TypeError("token_in and token_out must be str")
    hops, hops_fit = _int_in(max_hops, _USIZE_MAX)
    value, ok = _int_in(amount, _U128_MAX)
    if not ok:
        raise _error(
            RouteQueryError, "out_of_range", f"{field} must be an int in {_U128_RANGE}, got {value}"
        )
    if not hops_fit or not 1 <= hops <= MAX_HOPS:
        raise _error(
            RouteQueryError,
            "max_hops_out_of_range",
            f"max_hops must be in 1..={MAX_HOPS}, got {hops}",
        )
    if token_in == token_out:
        raise _error(
            RouteQueryError,
            "same_token",
            f"token_in and token_out are both '{token_in}'; nothing to route",
        )
    if value == 0:
        raise _error(RouteQueryError, "zero_amount", f"{field} must be positive, got 0")
    return value, hops


def best_route_exact_in(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: SupportsIndex,
    max_hops: SupportsIndex = _DEFAULT_MAX_HOPS,
) -> Route | None:
    """Twin of ``pipeline.ops.best_route_exact_in``: ``PoolSet(pools).best_route_exact_in``."""
    _argument_types(token_in, token_out, max_hops)
    return PoolSet(pools).best_route_exact_in(token_in, token_out, amount_in, max_hops)


def best_route_exact_out(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_out: SupportsIndex,
    max_hops: SupportsIndex = _DEFAULT_MAX_HOPS,
) -> Route | None:
    """Twin of ``pipeline.ops.best_route_exact_out``: ``PoolSet(pools).best_route_exact_out``."""
    _argument_types(token_in, token_out, max_hops)
    return PoolSet(pools).best_route_exact_out(token_in, token_out, amount_out, max_hops)


def _argument_types(token_in: str, token_out: str, max_hops: SupportsIndex) -> None:
    """TypeErrors that PyO3 raises while parsing arguments, i.e. before building the set."""
    if not isinstance(token_in, str) or not isinstance(token_out, str):
        raise TypeError("token_in and token_out must be str")
    operator.index(max_hops)
