"""Pure-Python twin of ``RouteGraph`` (``rust_ops/src/graph``): same answers, errors and reprs.

Read ``rust_ops/src/graph/mod.rs`` for the search, the split and the gas model; this file
follows ``search.rs`` step for step. Values are plain ints here (``amount_out - gas_price·gas``
for exact-in, ``-(amount_in + gas_price·gas)`` for exact-out) where Rust offsets them by
``2**200`` to stay unsigned; the order is the same. V3 legs use ``twin_v3``'s swap loop; the
constant-product formulas are ``cp_math.rs``'s (repeated here rather than imported, because
``twin`` imports this module for its mirror list).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import SupportsIndex, TypeVar

from pipeline._rust_ops import InvalidPoolError, PoolMathError, RouteQueryError, RustOpsError
from pipeline.ops import twin_v3
from pipeline.ops.twin_v3 import V3Pool

__all__ = [
    "GAS_BASE",
    "GAS_CP_HOP",
    "GAS_V3_HOP",
    "GAS_V3_TICK",
    "MAX_SPLITS",
    "GraphLeg",
    "GraphPath",
    "GraphRoute",
    "RouteGraph",
]

MAX_SPLITS = 8
SPLIT_CHUNKS = 20
GAS_BASE = 21_000
GAS_CP_HOP = 60_000
GAS_V3_HOP = 100_000
GAS_V3_TICK = 25_000

_MAX_HOPS = 6
_DIVE_WIDTH = 2  # edges tried per token by the exact-out search's first dive (search.rs)
_DEFAULT_MAX_HOPS = 3
_FEE_DENOMINATOR = 1_000_000
_U128_MAX = 2**128 - 1
_U64_MAX = 2**64 - 1
_U128_RANGE = "0..=2**128-1"
_Q192 = 1 << 192

_E = TypeVar("_E", bound=RustOpsError)


def _error(cls: type[_E], code: str, message: str) -> _E:
    err = cls(message)
    err.code = code
    return err


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


# A bound on a leg's or a path's output, ``x -> rate*x / (1 + rate*x*inv_cap)``, never more
# than ``most`` (``Bound`` in search.rs): ``(rate, inv_cap, most)``.
_Bound = tuple[float, float, float]
_NONE: _Bound = (0.0, math.inf, 0.0)
_IDENTITY: _Bound = (1.0, 0.0, math.inf)


def _then(first: _Bound, then: _Bound) -> _Bound:
    """``first`` followed by ``then`` (``Bound::then``)."""
    if first[0] <= 0.0 or then[0] <= 0.0:
        return _NONE
    return (first[0] * then[0], first[1] / then[0] + then[1], min(then[2], _out(then, first[2])))


def _out(b: _Bound, x: float) -> float:
    rx = b[0] * x
    if math.isinf(rx):
        return 1.0 / b[1] if b[1] else math.inf
    return rx / (1.0 + rx * b[1]) if rx > 0.0 else 0.0


def _need(b: _Bound, y: float) -> float | None:
    room = 1.0 - y * b[1]
    return y / (b[0] * room) if b[0] > 0.0 and room >= 1e-3 else None


class _Pool:
    """A pool as the graph holds it: ``cp`` is ``(reserve0, reserve1, fee)`` or ``v3`` is set;
    ``bound`` the search's bounds ``(token0 out, token1 out)`` (``spot_rates`` and
    ``spot_caps``, ``spot_most`` in mod.rs): the spot rate net of the fee, ``1 / cap``, and the
    most the pool pays out."""

    __slots__ = ("bound", "cp", "pool_id", "token0", "token1", "v3", "venue")

    def __init__(self, pool_id: str, venue: str, token0: str, token1: str,
                 cp: tuple[int, int, int] | None, v3: V3Pool | None) -> None:
        self.pool_id, self.venue, self.token0, self.token1 = pool_id, venue, token0, token1
        self.cp, self.v3 = cp, v3
        if cp is not None:
            r0, r1, fee = cp
            gamma = max(0, _FEE_DENOMINATOR - fee) / _FEE_DENOMINATOR
            rate = (r0 / r1 * gamma, r1 / r0 * gamma) if r0 and r1 else (0.0, 0.0)
            inv = (1.0 / r0 if r0 else math.inf, 1.0 / r1 if r1 else math.inf)
            pays = (float(r0), float(r1))
        else:
            assert v3 is not None
            gamma = max(0, _FEE_DENOMINATOR - v3.fee) / _FEE_DENOMINATOR
            sp = v3.sqrt_price_x96 / 2**96
            rate = (gamma / (sp * sp), sp * sp * gamma)
            # The largest range liquidity: every range's is a running sum of the nets.
            largest, running = float(v3.liquidity), 0.0
            for _, net in v3.ticks or ():
                running += net
                largest = max(largest, running)
            largest *= 1.0 + 1e-12
            inv = (sp / largest, 1.0 / (largest * sp)) if largest > 0 else (math.inf, math.inf)
            pays = (_v3_most(v3, False), _v3_most(v3, True))
        self.bound: tuple[_Bound, _Bound] = ((rate[0], inv[0], pays[0]),
                                             (rate[1], inv[1], pays[1]))


def _v3_most(pool: V3Pool, zero_for_one: bool) -> float:
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
        edge = min(max(edge, twin_v3.MIN_TICK), twin_v3.MAX_TICK)
        total = held(liquidity, sp, twin_v3.sqrt_ratio_at_tick(edge) / 2**96)
    else:
        below = [t for t in pool.ticks if t[0] <= pool.tick]
        crossed = below[::-1] if zero_for_one else [t for t in pool.ticks if t[0] > pool.tick]
        total, near = 0.0, sp
        for tick, net in crossed:
            far = twin_v3.sqrt_ratio_at_tick(tick) / 2**96
            total += held(liquidity, near, far)
            ranges += 1.0
            near = far
            liquidity += -net if zero_for_one else net
            if not 0 <= liquidity <= _U128_MAX:
                return math.inf
            most_l = max(most_l, liquidity)
        if liquidity > 0:
            return math.inf
    virtual_reserve = most_l * (sp if zero_for_one else 1.0 / sp)
    return total * (1.0 + 1e-9) + virtual_reserve * 1e-12 * ranges + 1.0


# A leg under search: (pool, zero_for_one, amount_in, amount_out, ticks crossed).
_Step = tuple[_Pool, bool, int, int, int]
# A quoted path: (value, steps in trading order).
_Quote = tuple[int, list[_Step]]
# A token's candidate edges, ``(bound, pool id, to, zero_for_one of the edge)``, best rate
# first, and the edges towards each token (indices, ascending): ``Cands`` in search.rs.
_Cands = tuple[list[tuple[_Bound, str, str, bool]], dict[str, list[int]]]
# Distances to the target, path bounds by hops left, the sorted candidates by (token, hops).
_Prepared = tuple[dict[str, int], list[dict[str, _Bound]], dict[tuple[str, int], _Cands]]


def _gas(pool: _Pool, ticks: int) -> int:
    return GAS_CP_HOP if pool.cp is not None else GAS_V3_HOP + GAS_V3_TICK * ticks


def _quote_out(pool: _Pool, z: bool, amount_in: int) -> tuple[int, int] | None:
    if pool.cp is not None:
        r0, r1, fee = pool.cp
        r_in, r_out = (r0, r1) if z else (r1, r0)
        if r_in == 0 or r_out == 0:
            return None
        w = amount_in * (_FEE_DENOMINATOR - fee)
        out = w * r_out // (r_in * _FEE_DENOMINATOR + w)
        return (out, 0) if out > 0 else None
    assert pool.v3 is not None
    try:
        r = twin_v3._swap(pool.v3, z, True, amount_in, None)
    except (PoolMathError, twin_v3._Revert):
        return None
    if r.amount_in_used != amount_in or r.amount_out > _U128_MAX or r.amount_out == 0:
        return None
    return r.amount_out, r.ticks_crossed


def _quote_in(pool: _Pool, z: bool, amount_out: int) -> tuple[int, int] | None:
    if pool.cp is not None:
        r0, r1, fee = pool.cp
        r_in, r_out = (r0, r1) if z else (r1, r0)
        if r_in == 0 or r_out == 0 or amount_out >= r_out:
            return None
        num = amount_out * r_in * _FEE_DENOMINATOR
        need = -(-num // ((r_out - amount_out) * (_FEE_DENOMINATOR - fee)))
        return (need, 0) if need <= _U128_MAX else None
    assert pool.v3 is not None
    try:
        r = twin_v3._swap(pool.v3, z, False, amount_out, None)
    except (PoolMathError, twin_v3._Revert):
        return None
    if r.amount_out != amount_out or r.amount_in_used > _U128_MAX:
        return None
    return r.amount_in_used, r.ticks_crossed


def _value(steps: list[_Step], exact_in: bool, gas_price: int) -> int:
    cost = gas_price * sum(_gas(s[0], s[4]) for s in steps)
    return steps[-1][3] - cost if exact_in else -steps[0][2] - cost


def _rank(q: _Quote) -> tuple[int, int, list[str]]:
    """Sort key: higher value, then fewer hops, then smaller pool ids."""
    return -q[0], len(q[1]), [s[0].pool_id for s in q[1]]


def _impact(amount_in: int, amount_out: int, num: int, den: int) -> int:
    mid, executed = amount_in * num, amount_out * den
    return 0 if mid == 0 or executed >= mid else (mid - executed) * 1_000_000 // mid


def _path(steps: list[_Step]) -> GraphPath:
    num = den = 1
    legs = []
    for pool, z, a_in, a_out, ticks in steps:
        if pool.cp is not None:
            r0, r1, fee = pool.cp
            r_in, r_out = (r0, r1) if z else (r1, r0)
            num *= r_out
            den *= r_in
        else:
            assert pool.v3 is not None
            fee = pool.v3.fee
            p2 = pool.v3.sqrt_price_x96**2
            num, den = (num * p2, den * _Q192) if z else (num * _Q192, den * p2)
        t_in, t_out = (pool.token0, pool.token1) if z else (pool.token1, pool.token0)
        kind = "constant_product" if pool.cp is not None else "concentrated"
        legs.append(GraphLeg(pool.pool_id, pool.venue, kind, t_in, t_out, z, a_in, a_out, ticks,
                             _gas(pool, ticks), fee))
    g = math.gcd(num, den)
    num, den = num // g, den // g
    a_in, a_out = legs[0].amount_in, legs[-1].amount_out
    return GraphPath(tuple(legs), a_in, a_out, num, den, _impact(a_in, a_out, num, den),
                     sum(leg.gas for leg in legs))


def _route(quotes: list[_Quote]) -> GraphRoute:
    paths = tuple(_path(steps) for _, steps in quotes)
    a_in = sum(p.amount_in for p in paths)
    a_out = sum(p.amount_out for p in paths)
    num, den = paths[0].mid_price_num, paths[0].mid_price_den
    return GraphRoute(paths, a_in, a_out, num, den, _impact(a_in, a_out, num, den),
                      GAS_BASE + sum(p.gas for p in paths))


def _count(value: SupportsIndex) -> tuple[int, bool]:
    v = operator.index(value)
    return v, 0 <= v <= _U64_MAX


class RouteGraph:
    """Twin of ``pipeline.ops.RouteGraph``."""

    __slots__ = ("_adj", "_chain_id", "_pools")

    def __init__(self, chain_id: SupportsIndex = 0) -> None:
        v, ok = _count(chain_id)
        if not ok:
            raise OverflowError(f"chain_id must be in 0..=2**64-1, got {v}")
        self._chain_id = v
        self._pools: dict[str, _Pool] = {}
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

    def _put(self, pool: _Pool) -> None:
        old = self._pools.get(pool.pool_id)
        if old is not None and (old.token0, old.token1) == (pool.token0, pool.token1):
            self._pools[pool.pool_id] = pool
            return
        if old is not None:
            self.remove_pool(pool.pool_id)
        self._pools[pool.pool_id] = pool
        self._adj.setdefault(pool.token0, {})[pool.pool_id] = (pool.token1, True)
        self._adj.setdefault(pool.token1, {})[pool.pool_id] = (pool.token0, False)

    def update_cp_pool(self, pool_id: str, venue: str, token0: str, token1: str,
                       reserve0: SupportsIndex, reserve1: SupportsIndex,
                       fee: SupportsIndex) -> None:
        """Twin of ``pipeline.ops.RouteGraph.update_cp_pool``."""
        from pipeline.ops.twin import Pool

        p = Pool(pool_id, venue, token0, token1, reserve0, reserve1, fee)  # type: ignore[arg-type]
        self._put(_Pool(p.pool_id, p.venue, p.token0, p.token1, (p.reserve0, p.reserve1, p.fee),
                        None))

    def update_pool(self, pool: object) -> None:
        """Twin of ``pipeline.ops.RouteGraph.update_pool``."""
        from pipeline.ops.twin import Pool

        if not isinstance(pool, Pool):
            raise TypeError(f"'{type(pool).__name__}' object cannot be converted to 'Pool'")
        self._put(_Pool(pool.pool_id, pool.venue, pool.token0, pool.token1,
                        (pool.reserve0, pool.reserve1, pool.fee), None))

    def update_v3_pool(self, pool_id: str, venue: str, token0: str, token1: str,
                       pool: V3Pool) -> None:
        """Twin of ``pipeline.ops.RouteGraph.update_v3_pool``."""
        for name, v in (("pool_id", pool_id), ("venue", venue), ("token0", token0),
                        ("token1", token1)):
            if not isinstance(v, str):
                raise TypeError(f"argument '{name}': expected str")
        if not isinstance(pool, V3Pool):
            raise TypeError(f"'{type(pool).__name__}' object cannot be converted to 'V3Pool'")
        if token0 == token1:
            err = _error(InvalidPoolError, "same_token",
                         f"pool '{pool_id}': token0 and token1 are both '{token0}'")
            err.pool_id = pool_id
            raise err
        self._put(_Pool(pool_id, venue, token0, token1, None, pool))

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

    def best_route(self, token_in: str, token_out: str, amount_in: SupportsIndex,
                   max_hops: SupportsIndex = _DEFAULT_MAX_HOPS, max_splits: SupportsIndex = 1,
                   gas_price: SupportsIndex | None = None) -> GraphRoute | None:
        """Twin of ``pipeline.ops.RouteGraph.best_route``."""
        q = _query(token_in, token_out, amount_in, "amount_in", max_hops, max_splits, gas_price)
        return self._best(token_in, token_out, *q, True)

    def best_route_exact_out(self, token_in: str, token_out: str, amount_out: SupportsIndex,
                             max_hops: SupportsIndex = _DEFAULT_MAX_HOPS,
                             max_splits: SupportsIndex = 1,
                             gas_price: SupportsIndex | None = None) -> GraphRoute | None:
        """Twin of ``pipeline.ops.RouteGraph.best_route_exact_out``."""
        q = _query(token_in, token_out, amount_out, "amount_out", max_hops, max_splits, gas_price)
        return self._best(token_in, token_out, *q, False)

    # --- search (search.rs) ---------------------------------------------------------------

    def _best(self, start: str, goal: str, amount: int, hops: int, splits: int, gp: int,
              exact_in: bool) -> GraphRoute | None:
        if start not in self._adj or goal not in self._adj:
            return None
        prepared = self._prepare(goal if exact_in else start, hops, exact_in)
        single = self._search(start, goal, amount, hops, exact_in, gp, prepared, set())
        chosen = self._split(start, goal, amount, hops, splits, exact_in, gp, single, prepared) \
            if splits > 1 else None
        if chosen is None:
            chosen = [single] if single is not None else None
        return _route(chosen) if chosen else None

    def _prepare(self, target: str, hops: int, exact_in: bool) -> _Prepared:
        """Distances to ``target``, the path bounds (``path_bounds`` in search.rs) and an
        empty cache of sorted candidates (``Prepared::candidates``). Rust works out the last
        level for the root's neighbours only (the only tokens it is read for); here it is
        worked out for every token, the same values where both have them."""
        dist = {target: 0}
        order = [target]
        frontier = [target]
        for d in range(1, hops):
            nxt = []
            for t in frontier:
                for to, _ in self._adj[t].values():
                    if to not in dist:
                        dist[to] = d
                        nxt.append(to)
            order += nxt
            frontier = nxt

        def along(edge: _Bound, rest: _Bound) -> _Bound:
            return _then(edge, rest) if exact_in else _then(rest, edge)

        bounds: list[dict[str, _Bound]] = [{target: _IDENTITY}]
        for r in range(1, hops):
            prev = bounds[-1]
            cur = dict(prev)
            for t in order:
                if dist[t] > r:
                    break
                rate, inv, most = cur.get(t, _NONE)
                for pid, (to, z) in self._adj[t].items():
                    rest = prev.get(to, _NONE)
                    if rest[0] > 0.0:
                        b = along(self._pools[pid].bound[z if exact_in else not z], rest)
                        rate, inv, most = max(rate, b[0]), min(inv, b[1]), max(most, b[2])
                cur[t] = (rate, inv, most)
            bounds.append(cur)
        return dist, bounds, {}

    def _candidates(self, prepared: _Prepared, token: str, remaining: int,
                    exact_in: bool) -> _Cands:
        """``(bound, pool id, to, zero_for_one of the edge)`` of the edges from ``token``
        towards a token at most ``remaining`` hops from the target, best rate first, and the
        edges towards each token; sorted once per query (``Prepared::candidates``)."""
        dist, bounds, cache = prepared
        key = (token, remaining)
        found = cache.get(key)
        if found is None:
            level = bounds[remaining]
            cands = []
            for pid, (to, z_edge) in self._adj[token].items():
                if dist.get(to, 255) <= remaining:
                    edge = self._pools[pid].bound[z_edge if exact_in else not z_edge]
                    rest = level.get(to, _NONE)
                    b = _then(edge, rest) if exact_in else _then(rest, edge)
                    cands.append((b, pid, to, z_edge))
            cands.sort(key=lambda c: -c[0][0])
            groups: dict[str, list[int]] = {}
            for i, c in enumerate(cands):
                groups.setdefault(c[2], []).append(i)
            found = cache[key] = (cands, groups)
        return found

    def _search(self, start: str, goal: str, amount: int, hops: int, exact_in: bool, gp: int,
                prepared: _Prepared, excluded: set[str]) -> _Quote | None:
        """The best usable simple path of at most ``hops`` legs for ``amount``, avoiding the
        ``excluded`` pools; branch and bound as ``Search::prune`` in search.rs."""
        root, target = (start, goal) if exact_in else (goal, start)
        pools = self._pools
        visited = {root}
        path: list[_Step] = []
        gas = [0]
        best: list[_Quote] = []

        def below(most: float, cost: int) -> bool:
            most = most * (1.0 + 1e-9) + 1.0
            return math.isfinite(most) and most < 1e38 and int(most) - cost < best[0][0]

        def above(least: float, cost: int) -> bool:
            least = least * (1.0 - 1e-9) - 1.0
            if not least > 0.0:
                return False
            return -(_U128_MAX if least >= 3.0e38 else int(least)) - cost < best[0][0]

        def pruned(pool: _Pool, bound: _Bound, have: int) -> str:
            """``"keep"``, ``"edge"`` (cut by the curve) or ``"rest"`` (cut by the rate:
            so is every later candidate when gas does not count); ``Cut`` in search.rs."""
            x = float(have)
            if not exact_in and (x * bound[1] > 1.0 + 1e-9 or x > bound[2] * (1.0 + 1e-9) + 1.0):
                return "edge"  # beyond the cap: no path through the edge delivers it
            if not best:
                return "keep"
            cost = gp * (gas[0] + _gas(pool, 0))
            if exact_in:
                if below(x * bound[0], cost):
                    return "rest"
                return "edge" if below(_out(bound, x), cost) else "keep"
            if not bound[0] > 0.0:
                return "keep"
            if above(x / bound[0], cost):
                return "rest"
            least = _need(bound, x)
            return "edge" if least is not None and above(least, cost) else "keep"

        def completes(to: str, step: _Step, leg_gas: int, have: int) -> None:
            """Takes the leg ``step`` (exact-in: from the walk's token to ``to``; exact-out:
            from ``to``), then offers the path or walks on from ``to`` with ``have``."""
            path.append(step)
            gas[0] += leg_gas
            if to == target:
                steps = list(path) if exact_in else path[::-1]
                quote = (_value(steps, exact_in, gp), steps)
                if not best or _rank(quote) < _rank(best[0]):
                    best[:] = [quote]
            else:
                visited.add(to)
                walk(to, have)
                visited.remove(to)
            gas[0] -= leg_gas
            path.pop()

        def hopeless(rest: _Bound, need: int, leg_gas: int) -> bool:
            """Exact-out: every completion from a token that must receive ``need`` is strictly
            worse than the best (``Search::hopeless``)."""
            if not best or not rest[0] > 0.0:
                return False
            cost = gp * (gas[0] + leg_gas)
            y = float(need)
            least = _need(rest, y)
            return above(y / rest[0], cost) or (least is not None and above(least, cost))

        def walk(token: str, have: int) -> None:
            # Best rate bound first (only the work depends on the order, never the answer).
            remaining = hops - len(path) - 1
            cands, groups = self._candidates(prepared, token, remaining, exact_in)
            if exact_in:
                for bound, pid, to, z in cands:
                    if to in visited or pid in excluded:
                        continue
                    pool = pools[pid]
                    cut = pruned(pool, bound, have)
                    if cut == "rest" and gp == 0:
                        break
                    if cut != "keep":
                        continue
                    q = _quote_out(pool, z, have)
                    if q is not None:
                        completes(to, (pool, z, have, q[0], q[1]), _gas(pool, q[1]), q[0])
                return
            # Exact-out: the parallel edges towards a token together, dominated legs dropped
            # (``Search::backward``).
            rest_from = len(cands)
            for i, (_, _, to, _) in enumerate(cands):
                if i >= rest_from:
                    break
                members = groups[to]
                if members[0] != i or to in visited:
                    continue
                legs: list[tuple[int, int, str, _Step]] = []  # (need, gas, pool id, step)
                for k in members:
                    if k >= rest_from:
                        break
                    bound, pid, _, z_edge = cands[k]
                    if pid in excluded:
                        continue
                    pool = pools[pid]
                    cut = pruned(pool, bound, have)
                    if cut == "rest" and gp == 0:
                        rest_from = k
                        break
                    if cut != "keep":
                        continue
                    z = not z_edge  # the leg trades `to` -> `token`
                    q = _quote_in(pool, z, have)
                    if q is not None:
                        legs.append((q[0], _gas(pool, q[1]), pid, (pool, z, q[0], have, q[1])))
                legs.sort(key=lambda leg: leg[:3])
                kept: list[tuple[int, int, str, _Step]] = []
                for leg in legs:
                    if not any((gp == 0 or k[1] <= leg[1]) and k[2] < leg[2] for k in kept):
                        kept.append(leg)
                rest = prepared[1][remaining].get(to, _NONE)
                for need, leg_gas, _, step in kept:
                    if to != target and hopeless(rest, need, leg_gas):
                        continue
                    reached = to == target or bool(best)
                    completes(to, step, leg_gas, need)
                    if not reached and not best:
                        break  # nothing completes from `to` with `need`, nor with more

        def dive(token: str, have: int) -> bool:
            """Exact-out: a first path, cheaply, to seed the best (``Search::dive``)."""
            cands, _ = self._candidates(prepared, token, hops - len(path) - 1, exact_in)
            tried = 0
            for bound, pid, to, z_edge in cands:
                if tried == _DIVE_WIDTH:
                    break
                if to in visited or pid in excluded:
                    continue
                pool = pools[pid]
                if pruned(pool, bound, have) != "keep":
                    continue
                tried += 1
                q = _quote_in(pool, not z_edge, have)
                if q is None:
                    continue
                leg_gas = _gas(pool, q[1])
                path.append((pool, not z_edge, q[0], have, q[1]))
                gas[0] += leg_gas
                if to == target:
                    steps = path[::-1]
                    best[:] = [(_value(steps, exact_in, gp), steps)]
                    found = True
                else:
                    visited.add(to)
                    found = dive(to, q[0])
                    visited.remove(to)
                gas[0] -= leg_gas
                path.pop()
                if found:
                    return True
            return False

        if not exact_in:
            dive(root, amount)
        walk(root, amount)
        return best[0] if best else None

    def _split(self, start: str, goal: str, amount: int, hops: int, splits: int,
               exact_in: bool, gp: int, single: _Quote | None,
               prepared: _Prepared) -> list[_Quote] | None:
        share = amount // splits
        if share == 0:
            return None
        # Best path, then best avoiding its pools, ...: the greedy disjoint pick.
        excluded: set[str] = set()
        candidates: list[list[tuple[_Pool, bool]]] = []
        while len(candidates) < splits:
            found = self._search(start, goal, share, hops, exact_in, gp, prepared, excluded)
            if found is None:
                break
            excluded.update(s[0].pool_id for s in found[1])
            candidates.append([(s[0], s[1]) for s in found[1]])
        if len(candidates) < 2:
            return None
        alloc = [0] * len(candidates)
        current: list[_Quote | None] = [None] * len(candidates)
        # Each candidate's quote for its share plus a chunk, by that amount (``offers`` in
        # search.rs): only the candidate that took the chunk needs quoting again.
        offers: dict[int, tuple[int, _Quote | None]] = {}
        base, rem = divmod(amount, SPLIT_CHUNKS)
        for c in range(SPLIT_CHUNKS):
            chunk = base + (1 if c < rem else 0)
            if chunk == 0:
                continue
            pick: tuple[int, int, _Quote] | None = None
            for i, legs in enumerate(candidates):
                want = alloc[i] + chunk
                offer = offers.get(i)
                if offer is None or offer[0] != want:
                    offer = offers[i] = (want, _quote_path(legs, want, exact_in, gp))
                q = offer[1]
                if q is None:
                    continue
                cur = current[i]
                gain = q[0] - (cur[0] if cur is not None else 0)
                if pick is None or gain > pick[1]:
                    pick = (i, gain, q)
            if pick is None:
                return None
            i, _, q = pick
            alloc[i] += chunk
            current[i] = q
            del offers[i]
        quotes = [q for q in current if q is not None]
        if len(quotes) < 2:
            return None
        if sum(q[1][0][2] for q in quotes) > _U128_MAX or \
                sum(q[1][-1][3] for q in quotes) > _U128_MAX:
            return None
        if single is not None and sum(q[0] for q in quotes) <= single[0]:
            return None
        return quotes


def _quote_path(legs: list[tuple[_Pool, bool]], amount: int, exact_in: bool,
                gp: int) -> _Quote | None:
    steps: list[_Step] = []
    x = amount
    if exact_in:
        for pool, z in legs:
            q = _quote_out(pool, z, x)
            if q is None:
                return None
            steps.append((pool, z, x, q[0], q[1]))
            x = q[0]
    else:
        for pool, z in reversed(legs):
            q = _quote_in(pool, z, x)
            if q is None:
                return None
            steps.append((pool, z, q[0], x, q[1]))
            x = q[0]
        steps.reverse()
    return _value(steps, exact_in, gp), steps


def _query(token_in: str, token_out: str, amount: SupportsIndex, field: str,
           max_hops: SupportsIndex, max_splits: SupportsIndex,
           gas_price: SupportsIndex | None) -> tuple[int, int, int, int]:
    """Checks a query in the Rust order; returns ``(amount, max_hops, max_splits, gas_price)``."""
    if not isinstance(token_in, str) or not isinstance(token_out, str):
        raise TypeError("token_in and token_out must be str")
    hops, hops_fit = _count(max_hops)
    splits, splits_fit = _count(max_splits)

    def uint(value: SupportsIndex, name: str) -> int:
        v = operator.index(value)
        if not 0 <= v <= _U128_MAX:
            raise _error(RouteQueryError, "out_of_range",
                         f"{name} must be an int in {_U128_RANGE}, got {v}")
        return v

    value = uint(amount, field)
    gp = uint(0 if gas_price is None else gas_price, "gas_price")
    if not hops_fit:
        raise _hops_error(hops)
    if not splits_fit:
        raise _splits_error(splits)
    if not 1 <= hops <= _MAX_HOPS:
        raise _hops_error(hops)
    if not 1 <= splits <= MAX_SPLITS:
        raise _splits_error(splits)
    if token_in == token_out:
        raise _error(RouteQueryError, "same_token",
                     f"token_in and token_out are both '{token_in}'; nothing to route")
    if value == 0:
        raise _error(RouteQueryError, "zero_amount", f"{field} must be positive, got 0")
    return value, hops, splits, gp


def _hops_error(v: int) -> RouteQueryError:
    return _error(RouteQueryError, "max_hops_out_of_range",
                  f"max_hops must be in 1..={_MAX_HOPS}, got {v}")


def _splits_error(v: int) -> RouteQueryError:
    return _error(RouteQueryError, "max_splits_out_of_range",
                  f"max_splits must be in 1..={MAX_SPLITS}, got {v}")
