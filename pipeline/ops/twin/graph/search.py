"""The twin's route search (``rust_ops/src/graph/search/``): the bounds, the candidates, the
depth-first walk, the split, the quotes and the result, step for step as the Rust code.

Values are plain ints here (``amount_out - gas_price·gas`` for exact-in, ``-(amount_in +
gas_price·gas)`` for exact-out) where Rust offsets them by ``2**200`` to stay unsigned; the
order is the same. Legs are quoted with the twin's own operators: ``cp_math`` for
constant-product pools, ``V3Pool.swap_exact_in``/``swap_exact_out`` for V3 pools.
"""

from __future__ import annotations

import math

from pipeline._rust_ops import PoolMathError
from pipeline.ops.twin import cp_math
from pipeline.ops.twin.convert import U128_MAX
from pipeline.ops.twin.graph.model import (
    GAS_BASE,
    SPLIT_CHUNKS,
    Bound,
    GraphLeg,
    GraphPath,
    GraphPool,
    GraphRoute,
)

__all__ = ["Quote", "Search", "Step", "quote_in", "quote_out", "quote_path", "rank", "route"]

_DIVE_WIDTH = 2  # edges tried per token by the exact-out search's first dive (walk.rs)
_Q192 = 1 << 192

# --- bounds (bounds.rs) ----------------------------------------------------------------------

_NONE: Bound = (0.0, math.inf, 0.0)
_IDENTITY: Bound = (1.0, 0.0, math.inf)


def _then(first: Bound, then: Bound) -> Bound:
    """``first`` followed by ``then`` (``Bound::then``)."""
    if first[0] <= 0.0 or then[0] <= 0.0:
        return _NONE
    return (first[0] * then[0], first[1] / then[0] + then[1], min(then[2], _out(then, first[2])))


def _out(b: Bound, x: float) -> float:
    rx = b[0] * x
    if math.isinf(rx):
        return 1.0 / b[1] if b[1] else math.inf
    return rx / (1.0 + rx * b[1]) if rx > 0.0 else 0.0


def _need(b: Bound, y: float) -> float | None:
    room = 1.0 - y * b[1]
    return y / (b[0] * room) if b[0] > 0.0 and room >= 1e-3 else None


# A leg under search: (pool, zero_for_one, amount_in, amount_out, ticks crossed).
Step = tuple[GraphPool, bool, int, int, int]
# A quoted path: (value, steps in trading order).
Quote = tuple[int, list[Step]]
# A token's candidate edges, ``(bound, pool id, to, zero_for_one of the edge)``, best rate
# first, and the edges towards each token (indices, ascending): ``Cands`` in candidates.rs.
Cands = tuple[list[tuple[Bound, str, str, bool]], dict[str, list[int]]]
# Distances to the target, path bounds by hops left, the sorted candidates by (token, hops).
Prepared = tuple[dict[str, int], list[dict[str, Bound]], dict[tuple[str, int], Cands]]


def quote_out(pool: GraphPool, z: bool, amount_in: int) -> tuple[int, int] | None:
    try:
        if pool.cp is not None:
            r0, r1, fee = pool.cp
            out = cp_math.out_given_in(*((r0, r1) if z else (r1, r0)), amount_in, fee)
            return (out, 0) if out > 0 else None
        assert pool.v3 is not None
        r = pool.v3.swap_exact_in(z, amount_in)
    except PoolMathError:
        return None
    if r.amount_in_used != amount_in or r.amount_out > U128_MAX or r.amount_out == 0:
        return None
    return r.amount_out, r.ticks_crossed


def quote_in(pool: GraphPool, z: bool, amount_out: int) -> tuple[int, int] | None:
    try:
        if pool.cp is not None:
            r0, r1, fee = pool.cp
            return cp_math.in_given_out(*((r0, r1) if z else (r1, r0)), amount_out, fee), 0
        assert pool.v3 is not None
        r = pool.v3.swap_exact_out(z, amount_out)
    except PoolMathError:
        return None
    if r.amount_out != amount_out or r.amount_in_used > U128_MAX:
        return None
    return r.amount_in_used, r.ticks_crossed


def _value(steps: list[Step], exact_in: bool, gas_price: int) -> int:
    cost = gas_price * sum(s[0].gas(s[4]) for s in steps)
    return steps[-1][3] - cost if exact_in else -steps[0][2] - cost


def rank(q: Quote) -> tuple[int, int, list[str]]:
    """Sort key: higher value, then fewer hops, then smaller pool ids."""
    return -q[0], len(q[1]), [s[0].pool_id for s in q[1]]


def _impact(amount_in: int, amount_out: int, num: int, den: int) -> int:
    mid, executed = amount_in * num, amount_out * den
    return 0 if mid == 0 or executed >= mid else (mid - executed) * 1_000_000 // mid


def _path(steps: list[Step]) -> GraphPath:
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
        legs.append(
            GraphLeg(
                pool.pool_id,
                pool.venue,
                kind,
                t_in,
                t_out,
                z,
                a_in,
                a_out,
                ticks,
                pool.gas(ticks),
                fee,
            )
        )
    g = math.gcd(num, den)
    num, den = num // g, den // g
    a_in, a_out = legs[0].amount_in, legs[-1].amount_out
    return GraphPath(
        tuple(legs),
        a_in,
        a_out,
        num,
        den,
        _impact(a_in, a_out, num, den),
        sum(leg.gas for leg in legs),
    )


def route(quotes: list[Quote]) -> GraphRoute:
    paths = tuple(_path(steps) for _, steps in quotes)
    a_in = sum(p.amount_in for p in paths)
    a_out = sum(p.amount_out for p in paths)
    num, den = paths[0].mid_price_num, paths[0].mid_price_den
    return GraphRoute(
        paths,
        a_in,
        a_out,
        num,
        den,
        _impact(a_in, a_out, num, den),
        GAS_BASE + sum(p.gas for p in paths),
    )


class Search:
    """One query's view of a graph: its adjacency, ``token -> {pool_id: (other token,
    zero_for_one)}``, and its pools by id."""

    __slots__ = ("_adj", "_pools")

    def __init__(
        self, adj: dict[str, dict[str, tuple[str, bool]]], pools: dict[str, GraphPool]
    ) -> None:
        self._adj, self._pools = adj, pools

    def best(
        self, start: str, goal: str, amount: int, hops: int, splits: int, gp: int, exact_in: bool
    ) -> GraphRoute | None:
        """The query's route (arguments checked by the caller): ``search::best``."""
        if start not in self._adj or goal not in self._adj:
            return None
        prepared = self._prepare(goal if exact_in else start, hops, exact_in)
        single = self._search(start, goal, amount, hops, exact_in, gp, prepared, set())
        chosen = (
            self._split(start, goal, amount, hops, splits, exact_in, gp, single, prepared)
            if splits > 1
            else None
        )
        if chosen is None:
            chosen = [single] if single is not None else None
        return route(chosen) if chosen else None

    def _prepare(self, target: str, hops: int, exact_in: bool) -> Prepared:
        """Distances to ``target``, the path bounds (``path_bounds`` in bounds.rs) and an
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

        def along(edge: Bound, rest: Bound) -> Bound:
            return _then(edge, rest) if exact_in else _then(rest, edge)

        bounds: list[dict[str, Bound]] = [{target: _IDENTITY}]
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

    def _candidates(self, prepared: Prepared, token: str, remaining: int, exact_in: bool) -> Cands:
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

    def _search(
        self,
        start: str,
        goal: str,
        amount: int,
        hops: int,
        exact_in: bool,
        gp: int,
        prepared: Prepared,
        excluded: set[str],
    ) -> Quote | None:
        """The best usable simple path of at most ``hops`` legs for ``amount``, avoiding the
        ``excluded`` pools; branch and bound as ``Search::prune`` in walk.rs."""
        root, target = (start, goal) if exact_in else (goal, start)
        pools = self._pools
        visited = {root}
        path: list[Step] = []
        gas = [0]
        best: list[Quote] = []

        def below(most: float, cost: int) -> bool:
            most = most * (1.0 + 1e-9) + 1.0
            return math.isfinite(most) and most < 1e38 and int(most) - cost < best[0][0]

        def above(least: float, cost: int) -> bool:
            least = least * (1.0 - 1e-9) - 1.0
            if not least > 0.0:
                return False
            return -(U128_MAX if least >= 3.0e38 else int(least)) - cost < best[0][0]

        def pruned(pool: GraphPool, bound: Bound, have: int) -> str:
            """``"keep"``, ``"edge"`` (cut by the curve) or ``"rest"`` (cut by the rate:
            so is every later candidate when gas does not count); ``Cut`` in walk.rs."""
            x = float(have)
            if not exact_in and (x * bound[1] > 1.0 + 1e-9 or x > bound[2] * (1.0 + 1e-9) + 1.0):
                return "edge"  # beyond the cap: no path through the edge delivers it
            if not best:
                return "keep"
            cost = gp * (gas[0] + pool.gas(0))
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

        def completes(to: str, step: Step, leg_gas: int, have: int) -> None:
            """Takes the leg ``step`` (exact-in: from the walk's token to ``to``; exact-out:
            from ``to``), then offers the path or walks on from ``to`` with ``have``."""
            path.append(step)
            gas[0] += leg_gas
            if to == target:
                steps = list(path) if exact_in else path[::-1]
                quote = (_value(steps, exact_in, gp), steps)
                if not best or rank(quote) < rank(best[0]):
                    best[:] = [quote]
            else:
                visited.add(to)
                walk(to, have)
                visited.remove(to)
            gas[0] -= leg_gas
            path.pop()

        def hopeless(rest: Bound, need: int, leg_gas: int) -> bool:
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
                    q = quote_out(pool, z, have)
                    if q is not None:
                        completes(to, (pool, z, have, q[0], q[1]), pool.gas(q[1]), q[0])
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
                legs: list[tuple[int, int, str, Step]] = []  # (need, gas, pool id, step)
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
                    q = quote_in(pool, z, have)
                    if q is not None:
                        legs.append((q[0], pool.gas(q[1]), pid, (pool, z, q[0], have, q[1])))
                legs.sort(key=lambda leg: leg[:3])
                kept: list[tuple[int, int, str, Step]] = []
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
                q = quote_in(pool, not z_edge, have)
                if q is None:
                    continue
                leg_gas = pool.gas(q[1])
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

    def _split(
        self,
        start: str,
        goal: str,
        amount: int,
        hops: int,
        splits: int,
        exact_in: bool,
        gp: int,
        single: Quote | None,
        prepared: Prepared,
    ) -> list[Quote] | None:
        share = amount // splits
        if share == 0:
            return None
        # Best path, then best avoiding its pools, ...: the greedy disjoint pick.
        excluded: set[str] = set()
        candidates: list[list[tuple[GraphPool, bool]]] = []
        while len(candidates) < splits:
            found = self._search(start, goal, share, hops, exact_in, gp, prepared, excluded)
            if found is None:
                break
            excluded.update(s[0].pool_id for s in found[1])
            candidates.append([(s[0], s[1]) for s in found[1]])
        if len(candidates) < 2:
            return None
        alloc = [0] * len(candidates)
        current: list[Quote | None] = [None] * len(candidates)
        # Each candidate's quote for its share plus a chunk, by that amount (``offers`` in
        # split.rs): only the candidate that took the chunk needs quoting again.
        offers: dict[int, tuple[int, Quote | None]] = {}
        base, rem = divmod(amount, SPLIT_CHUNKS)
        for c in range(SPLIT_CHUNKS):
            chunk = base + (1 if c < rem else 0)
            if chunk == 0:
                continue
            pick: tuple[int, int, Quote] | None = None
            for i, legs in enumerate(candidates):
                want = alloc[i] + chunk
                offer = offers.get(i)
                if offer is None or offer[0] != want:
                    offer = offers[i] = (want, quote_path(legs, want, exact_in, gp))
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
        if (
            sum(q[1][0][2] for q in quotes) > U128_MAX
            or sum(q[1][-1][3] for q in quotes) > U128_MAX
        ):
            return None
        if single is not None and sum(q[0] for q in quotes) <= single[0]:
            return None
        return quotes


def quote_path(
    legs: list[tuple[GraphPool, bool]], amount: int, exact_in: bool, gp: int
) -> Quote | None:
    steps: list[Step] = []
    x = amount
    if exact_in:
        for pool, z in legs:
            q = quote_out(pool, z, x)
            if q is None:
                return None
            steps.append((pool, z, x, q[0], q[1]))
            x = q[0]
    else:
        for pool, z in reversed(legs):
            q = quote_in(pool, z, x)
            if q is None:
                return None
            steps.append((pool, z, q[0], x, q[1]))
            x = q[0]
        steps.reverse()
    return _value(steps, exact_in, gp), steps
