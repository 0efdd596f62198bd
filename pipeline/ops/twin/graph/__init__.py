"""Twin of ``RouteGraph`` (``rust_ops/src/graph``, ``python/graph.rs``): same answers, errors
and reprs. The graph's data and gas model are in :mod:`.model`, the search in :mod:`.search`;
read ``rust_ops/src/graph/mod.rs`` for the why."""

from __future__ import annotations

import operator
from typing import SupportsIndex

from pipeline._rust_ops import RouteQueryError
from pipeline.ops.twin.convert import U64_MAX, U128_MAX, U128_RANGE, int_in
from pipeline.ops.twin.error import error, invalid_pool
from pipeline.ops.twin.graph.model import (
    DEFAULT_MAX_HOPS,
    GAS_BASE,
    GAS_CP_HOP,
    GAS_V3_HOP,
    GAS_V3_TICK,
    MAX_HOPS,
    MAX_SPLITS,
    GraphLeg,
    GraphPath,
    GraphPool,
    GraphRoute,
)
from pipeline.ops.twin.graph.search import Search
from pipeline.ops.twin.pool import Pool
from pipeline.ops.twin.v3 import V3Pool

__all__ = [
    "GAS_BASE",
    "GAS_CP_HOP",
    "GAS_V3_HOP",
    "GAS_V3_TICK",
    "MAX_HOPS",
    "MAX_SPLITS",
    "GraphLeg",
    "GraphPath",
    "GraphRoute",
    "RouteGraph",
]


class RouteGraph:
    """Twin of ``pipeline.ops.RouteGraph``."""

    __slots__ = ("_adj", "_chain_id", "_pools")

    def __init__(self, chain_id: SupportsIndex = 0) -> None:
        v, ok = int_in(chain_id, U64_MAX)
        if not ok:
            raise OverflowError(f"chain_id must be in 0..=2**64-1, got {v}")
        self._chain_id = v
        self._pools: dict[str, GraphPool] = {}
        # token -> {pool_id: (other token, zero_for_one)}; tokens are never forgotten.
        self._adj: dict[str, dict[str, tuple[str, bool]]] = {}

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def __len__(self) -> int:
        return len(self._pools)

    def __contains__(self, pool_id: object) -> bool:
        if not isinstance(pool_id, str):
            raise TypeError("pool_id must be str")
        return pool_id in self._pools

    def __repr__(self) -> str:
        return f"RouteGraph(chain_id={self._chain_id}, {len(self._pools)} pools)"

    def _put(self, pool: GraphPool) -> None:
        old = self._pools.get(pool.pool_id)
        if old is not None and (old.token0, old.token1) == (pool.token0, pool.token1):
            self._pools[pool.pool_id] = pool
            return
        if old is not None:
            self.remove_pool(pool.pool_id)
        self._pools[pool.pool_id] = pool
        self._adj.setdefault(pool.token0, {})[pool.pool_id] = (pool.token1, True)
        self._adj.setdefault(pool.token1, {})[pool.pool_id] = (pool.token0, False)

    def update_cp_pool(
        self,
        pool_id: str,
        venue: str,
        token0: str,
        token1: str,
        reserve0: SupportsIndex,
        reserve1: SupportsIndex,
        fee: SupportsIndex,
    ) -> None:
        """Twin of ``pipeline.ops.RouteGraph.update_cp_pool``."""
        p = Pool(pool_id, venue, token0, token1, reserve0, reserve1, fee)  # type: ignore[arg-type]
        self._put(
            GraphPool(p.pool_id, p.venue, p.token0, p.token1, (p.reserve0, p.reserve1, p.fee), None)
        )

    def update_pool(self, pool: object) -> None:
        """Twin of ``pipeline.ops.RouteGraph.update_pool``."""
        if not isinstance(pool, Pool):
            raise TypeError(f"'{type(pool).__name__}' object cannot be converted to 'Pool'")
        self._put(
            GraphPool(
                pool.pool_id,
                pool.venue,
                pool.token0,
                pool.token1,
                (pool.reserve0, pool.reserve1, pool.fee),
                None,
            )
        )

    def update_v3_pool(
        self, pool_id: str, venue: str, token0: str, token1: str, pool: V3Pool
    ) -> None:
        """Twin of ``pipeline.ops.RouteGraph.update_v3_pool``."""
        for name, v in (
            ("pool_id", pool_id),
            ("venue", venue),
            ("token0", token0),
            ("token1", token1),
        ):
            if not isinstance(v, str):
                raise TypeError(f"argument '{name}': expected str")
        if not isinstance(pool, V3Pool):
            raise TypeError(f"'{type(pool).__name__}' object cannot be converted to 'V3Pool'")
        if token0 == token1:
            raise invalid_pool(pool_id, "same_token", f"token0 and token1 are both '{token0}'")
        self._put(GraphPool(pool_id, venue, token0, token1, None, pool))

    def remove_pool(self, pool_id: str) -> bool:
        """Twin of ``pipeline.ops.RouteGraph.remove_pool``."""
        if not isinstance(pool_id, str):
            raise TypeError("pool_id must be str")
        pool = self._pools.pop(pool_id, None)
        if pool is None:
            return False
        del self._adj[pool.token0][pool_id]
        del self._adj[pool.token1][pool_id]
        return True

    def best_route(
        self,
        token_in: str,
        token_out: str,
        amount_in: SupportsIndex,
        max_hops: SupportsIndex = DEFAULT_MAX_HOPS,
        max_splits: SupportsIndex = 1,
        gas_price: SupportsIndex | None = None,
    ) -> GraphRoute | None:
        """Twin of ``pipeline.ops.RouteGraph.best_route``."""
        q = _query(token_in, token_out, amount_in, "amount_in", max_hops, max_splits, gas_price)
        return self._best(token_in, token_out, *q, True)

    def best_route_exact_out(
        self,
        token_in: str,
        token_out: str,
        amount_out: SupportsIndex,
        max_hops: SupportsIndex = DEFAULT_MAX_HOPS,
        max_splits: SupportsIndex = 1,
        gas_price: SupportsIndex | None = None,
    ) -> GraphRoute | None:
        """Twin of ``pipeline.ops.RouteGraph.best_route_exact_out``."""
        q = _query(token_in, token_out, amount_out, "amount_out", max_hops, max_splits, gas_price)
        return self._best(token_in, token_out, *q, False)

    def _best(
        self, start: str, goal: str, amount: int, hops: int, splits: int, gp: int, exact_in: bool
    ) -> GraphRoute | None:
        return Search(self._adj, self._pools).best(start, goal, amount, hops, splits, gp, exact_in)


def _query(
    token_in: str,
    token_out: str,
    amount: SupportsIndex,
    field: str,
    max_hops: SupportsIndex,
    max_splits: SupportsIndex,
    gas_price: SupportsIndex | None,
) -> tuple[int, int, int, int]:
    """Checks a query in the Rust order; returns ``(amount, max_hops, max_splits, gas_price)``."""
    if not isinstance(token_in, str) or not isinstance(token_out, str):
        raise TypeError("token_in and token_out must be str")
    hops, hops_fit = int_in(max_hops, U64_MAX)
    splits, splits_fit = int_in(max_splits, U64_MAX)

    def uint(value: SupportsIndex, name: str) -> int:
        v = operator.index(value)
        if not 0 <= v <= U128_MAX:
            raise error(
                RouteQueryError, "out_of_range", f"{name} must be an int in {U128_RANGE}, got {v}"
            )
        return v

    value = uint(amount, field)
    gp = uint(0 if gas_price is None else gas_price, "gas_price")
    if not hops_fit:
        raise _hops_error(hops)
    if not splits_fit:
        raise _splits_error(splits)
    if not 1 <= hops <= MAX_HOPS:
        raise _hops_error(hops)
    if not 1 <= splits <= MAX_SPLITS:
        raise _splits_error(splits)
    if token_in == token_out:
        raise error(
            RouteQueryError,
            "same_token",
            f"token_in and token_out are both '{token_in}'; nothing to route",
        )
    if value == 0:
        raise error(RouteQueryError, "zero_amount", f"{field} must be positive, got 0")
    return value, hops, splits, gp


def _hops_error(v: int) -> RouteQueryError:
    return error(
        RouteQueryError, "max_hops_out_of_range", f"max_hops must be in 1..={MAX_HOPS}, got {v}"
    )


def _splits_error(v: int) -> RouteQueryError:
    return error(
        RouteQueryError,
        "max_splits_out_of_range",
        f"max_splits must be in 1..={MAX_SPLITS}, got {v}",
    )
