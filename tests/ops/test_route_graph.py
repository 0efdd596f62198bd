"""RouteGraph: Rust == twin on random graphs of constant-product and V3 pools, and the
properties of the search (incremental = rebuilt, removal, splits never worse, exact-out the
inverse of exact-in, max_hops and disjointness respected)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.ops as rust
from pipeline.models.market import PoolState, TickLiquidity
from pipeline.ops import twin
from pipeline.ops.graph import apply_pool_state, graph_from_pool_states
from pipeline.ops.twin.graph import search

TOKENS = [f"T{i}" for i in range(4)]
SPACING = 60
E18 = 10**18

# A pool spec: ("cp", t0, t1, r0, r1, fee) or ("v3", t0, t1, tick, positions, known, fee).
RESERVES = st.builds(lambda m, e: m * 10**e, st.integers(1, 999), st.integers(12, 22))
CP = st.tuples(
    st.just("cp"),
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS),
    RESERVES,
    RESERVES,
    st.sampled_from([0, 500, 3000]),
)
# (ticks below, ticks above, L) of a position around tick 0, in tick spacings.
POSITION = st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(10**18, 10**25))
V3 = st.tuples(
    st.just("v3"),
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS),
    st.integers(-59, 59),
    st.lists(POSITION, min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from([500, 3000, 10_000]),
)
SPECS = st.lists(st.one_of(CP, V3), min_size=1, max_size=12)
# Log-uniform-ish: from dust to a good share of the pools.
AMOUNTS = st.builds(lambda m, e: m * 10**e, st.integers(1, 999), st.integers(0, 19))


def v3_args(
    tick: int, positions: list[tuple[int, int, int]], known: bool
) -> tuple[int, int, int, tuple[tuple[int, int], ...] | None]:
    """(sqrt price, liquidity, tick, ticks) of a pool at ``tick`` with the positions."""
    net: dict[int, int] = {}
    liquidity = 0
    for below, above, amount in positions:
        lo, hi = -below * SPACING, above * SPACING
        net[lo] = net.get(lo, 0) + amount
        net[hi] = net.get(hi, 0) - amount
        if lo <= tick < hi:
            liquidity += amount
    ticks = tuple(sorted(net.items())) if known else None
    # Inside the tick, not on its edge.
    return twin.sqrt_ratio_at_tick(tick) + 1, liquidity, tick, ticks


def build(ops: ModuleType, specs: list[tuple[Any, ...]], order: list[int] | None = None) -> Any:
    g = ops.RouteGraph(1)
    items = [(i, s) for i, s in enumerate(specs) if s[1] != s[2]]
    if order is not None:
        items = [items[i % len(items)] for i in order] if items else []
    for i, s in items:
        add(ops, g, f"p{i:02d}", s)
    return g


def add(ops: ModuleType, g: Any, pool_id: str, s: tuple[Any, ...]) -> None:
    if s[0] == "cp":
        _, t0, t1, r0, r1, fee = s
        g.update_cp_pool(pool_id, "sim", t0, t1, r0, r1, fee)
    else:
        _, t0, t1, tick, positions, known, fee = s
        price, liquidity, tick, ticks = v3_args(tick, positions, known)
        pool = ops.V3Pool(price, liquidity, tick, SPACING, fee, ticks)
        g.update_v3_pool(pool_id, "uni", t0, t1, pool)


def plain(value: Any) -> Any:
    """A result as nested tuples, comparable across implementations."""
    if value is None or isinstance(value, int | str | bool):
        return value
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    fields = [n for n in dir(value) if not n.startswith("_") and not callable(getattr(value, n))]
    return tuple((n, plain(getattr(value, n))) for n in sorted(fields))


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", plain(call()))
    except rust.RustOpsError as exc:
        return ("err", type(exc).__name__, exc.code, str(exc))  # type: ignore[attr-defined]


def query(
    g: Any, exact_in: bool, pair: tuple[str, str], amount: int, hops: int, splits: int, gas: int
) -> Any:
    a, b = pair
    method = g.best_route if exact_in else g.best_route_exact_out
    return method(a, b, amount, hops, splits, gas)


PAIRS = st.sampled_from([(a, b) for a in TOKENS for b in TOKENS if a != b])
QUERY = st.tuples(
    st.booleans(),
    PAIRS,
    AMOUNTS,
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([0, 0, 1, 10**6]),
)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(specs=SPECS, queries=st.lists(QUERY, min_size=1, max_size=4))
def test_rust_equals_twin(specs: list[tuple[Any, ...]], queries: list[tuple[Any, ...]]) -> None:
    r, p = build(rust, specs), build(twin, specs)
    assert len(r) == len(p)
    for q in queries:
        assert outcome(lambda q=q: query(r, *q)) == outcome(lambda q=q: query(p, *q)), q


@SETTINGS
@given(
    specs=SPECS,
    edits=SPECS,
    removals=st.lists(st.integers(0, 9), max_size=4),
    order=st.permutations(list(range(10))),
    q=QUERY,
)
def test_incremental_equals_rebuilt(
    specs: list[tuple[Any, ...]],
    edits: list[tuple[Any, ...]],
    removals: list[int],
    order: list[int],
    q: tuple[Any, ...],
) -> None:
    for ops in (rust, twin):
        g = build(ops, specs)
        final: dict[str, tuple[Any, ...]] = {
            f"p{i:02d}": s for i, s in enumerate(specs) if s[1] != s[2]
        }
        for i, s in enumerate(edits):
            if s[1] != s[2]:
                add(ops, g, f"p{i:02d}", s)
                final[f"p{i:02d}"] = s
        for i in removals:
            assert g.remove_pool(f"p{i:02d}") == (final.pop(f"p{i:02d}", None) is not None)
        rebuilt = ops.RouteGraph(1)
        ids = sorted(final)
        for k in order:
            if k < len(ids) and ids[k] not in rebuilt:
                add(ops, rebuilt, ids[k], final[ids[k]])
        for pid in ids:
            if pid not in rebuilt:
                add(ops, rebuilt, pid, final[pid])
        assert len(g) == len(rebuilt) == len(final)
        got = outcome(lambda g=g: query(g, *q))
        assert got == outcome(lambda g=rebuilt: query(g, *q))


@SETTINGS
@given(specs=SPECS, amount=AMOUNTS, hops=st.integers(1, 4))
def test_removing_a_pool_removes_its_routes(
    specs: list[tuple[Any, ...]], amount: int, hops: int
) -> None:
    g = build(rust, specs)
    for _ in range(3):
        route = g.best_route("T0", "T1", amount, hops, 2)
        if route is None:
            return
        used = {leg.pool_id for path in route.paths for leg in path.legs}
        for pid in used:
            assert g.remove_pool(pid)
        after = g.best_route("T0", "T1", amount, hops, 2)
        if after is not None:
            assert not used & {leg.pool_id for path in after.paths for leg in path.legs}


@SETTINGS
@given(
    specs=SPECS,
    amount=AMOUNTS,
    hops=st.integers(1, 4),
    splits=st.integers(2, 5),
    gas=st.sampled_from([0, 1, 10**9]),
    exact_in=st.booleans(),
)
def test_split_is_never_worse_and_keeps_its_limits(
    specs: list[tuple[Any, ...]], amount: int, hops: int, splits: int, gas: int, exact_in: bool
) -> None:
    g = build(rust, specs)
    one = query(g, exact_in, ("T0", "T1"), amount, hops, 1, gas)
    many = query(g, exact_in, ("T0", "T1"), amount, hops, splits, gas)

    def value(r: Any) -> int:
        cost = gas * r.gas
        return r.amount_out - cost if exact_in else -r.amount_in - cost

    if one is not None:
        assert many is not None
        assert value(many) >= value(one)
    if many is None:
        return
    assert len(many.paths) <= splits
    assert (many.amount_in if exact_in else many.amount_out) == amount
    assert many.amount_in == sum(p.amount_in for p in many.paths)
    assert many.amount_out == sum(p.amount_out for p in many.paths)
    assert many.gas == rust.GAS_BASE + sum(leg.gas for p in many.paths for leg in p.legs)
    pools = [leg.pool_id for p in many.paths for leg in p.legs]
    assert len(pools) == len(set(pools))  # pool-disjoint
    for p in many.paths:
        assert 1 <= len(p.legs) <= hops
        assert p.legs[0].token_in == "T0"
        assert p.legs[-1].token_out == "T1"
        tokens = [p.legs[0].token_in] + [leg.token_out for leg in p.legs]
        assert len(tokens) == len(set(tokens))  # simple path
        for a, b in zip(p.legs, p.legs[1:], strict=False):
            assert a.amount_out == b.amount_in
            assert a.token_out == b.token_in


@SETTINGS
@given(specs=SPECS, amount=AMOUNTS, hops=st.integers(1, 4))
def test_exact_out_inverts_exact_in(specs: list[tuple[Any, ...]], amount: int, hops: int) -> None:
    g = build(rust, specs)
    fwd = g.best_route("T0", "T1", amount, hops)
    if fwd is None:
        return
    back = g.best_route_exact_out("T0", "T1", fwd.amount_out, hops)
    assert back is not None
    assert back.amount_out == fwd.amount_out
    # The least input for that output is at most what bought it, and spending it buys it.
    assert back.amount_in <= amount
    again = g.best_route("T0", "T1", back.amount_in, hops)
    assert again is not None
    assert again.amount_out >= fwd.amount_out


def test_known_route_both(ops: ModuleType) -> None:
    g = ops.RouteGraph(1)
    g.update_cp_pool("direct", "sim", "A", "C", 1_000, 1_000, 3000)
    g.update_cp_pool("ab", "sim", "A", "B", 1_000_000, 1_000_000, 3000)
    g.update_cp_pool("bc", "sim", "B", "C", 1_000_000, 1_000_000, 3000)
    r = g.best_route("A", "C", 1000)
    assert [leg.pool_id for leg in r.paths[0].legs] == ["ab", "bc"]
    assert (r.amount_out, r.price_impact_ppm, r.gas) == (992, 8000, 21_000 + 2 * 60_000)
    assert (r.mid_price_num, r.mid_price_den) == (1, 1)
    assert g.best_route("A", "C", 1000, gas_price=1).paths[0].legs[0].pool_id == "direct"
    assert len(g) == 3
    assert "ab" in g
    assert "zz" not in g
    assert repr(g) == "RouteGraph(chain_id=1, 3 pools)"
    assert g.chain_id == 1


def test_reprs_match() -> None:
    results = []
    for ops in (rust, twin):
        g = ops.RouteGraph(1)
        g.update_cp_pool("p1", "sim", "A", "B", 10**24, 10**24, 3000)
        g.update_cp_pool("p2", "sim", "A", "B", 10**24, 10**24, 3000)
        price, liquidity, tick, ticks = v3_args(30, [(10, 20, 10**22)], True)
        for pid in ("v1", "v2"):
            pool = ops.V3Pool(price, liquidity, tick, 60, 3000, ticks)
            g.update_v3_pool(pid, "uni", "B", "C", pool)
        results.append(repr(g.best_route("A", "C", 10**20, 3, 2)))
    assert results[0] == results[1]
    assert "GraphRoute(paths=(GraphPath(legs=(GraphLeg(pool_id='p1'" in results[0]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("A", "B", 0), "zero_amount"),
        (("A", "A", 1), "same_token"),
        (("A", "B", 1, 0), "max_hops_out_of_range"),
        (("A", "B", 1, 7), "max_hops_out_of_range"),
        (("A", "B", 1, -1), "max_hops_out_of_range"),
        (("A", "B", 1, 3, 0), "max_splits_out_of_range"),
        (("A", "B", 1, 3, 9), "max_splits_out_of_range"),
        (("A", "B", 1, 3, 2**70), "max_splits_out_of_range"),
        (("A", "B", 2**128), "out_of_range"),
        (("A", "B", 1, 3, 1, -1), "out_of_range"),
        (("A", "A", 0, 0, 0), "max_hops_out_of_range"),
    ],
)
def test_query_errors_match(args: tuple[Any, ...], code: str) -> None:
    got = []
    for ops in (rust, twin):
        g = ops.RouteGraph()
        g.update_cp_pool("ab", "sim", "A", "B", 100, 100, 0)
        with pytest.raises(ops.RouteQueryError) as exc:
            g.best_route(*args)
        got.append((exc.value.code, str(exc.value)))
    assert got[0] == got[1]
    assert got[0][0] == code


def test_pool_errors_match() -> None:
    for ops in (rust, twin):
        g = ops.RouteGraph()
        with pytest.raises(ops.InvalidPoolError) as exc:
            g.update_cp_pool("x", "sim", "A", "A", 1, 1, 0)
        assert (exc.value.code, exc.value.pool_id) == ("same_token", "x")
        with pytest.raises(ops.InvalidPoolError) as exc:
            g.update_cp_pool("x", "sim", "A", "B", 1, 1, 10**6)
        assert exc.value.code == "fee_out_of_range"
        pool = ops.V3Pool(*v3_args(0, [(1, 2, 10**18)], True)[:3], 60, 3000)
        with pytest.raises(ops.InvalidPoolError):
            g.update_v3_pool("y", "uni", "A", "A", pool)
        with pytest.raises(TypeError):
            g.update_v3_pool("y", "uni", "A", "B", object())
        assert not g.remove_pool("y")
        assert len(g) == 0


def test_graph_from_pool_states() -> None:
    price, liquidity, tick, ticks = v3_args(30, [(10, 20, 10**22)], True)
    states = [
        PoolState(
            pool_id="cp",
            venue="sim",
            chain_id=5,
            token0="A",
            token1="B",
            reserve0=10**24,
            reserve1=10**24,
            fee=3000,
        ),
        PoolState(
            pool_id="v3",
            venue="uni",
            kind="concentrated",
            chain_id=5,
            token0="B",
            token1="C",
            reserve0=1,
            reserve1=1,
            fee=3000,
            sqrt_price_x96=price,
            liquidity=liquidity,
            tick=tick,
            tick_spacing=60,
            ticks=tuple(TickLiquidity(tick=t, liquidity_net=n) for t, n in ticks or ()),
        ),
    ]
    g = graph_from_pool_states(states)
    assert (g.chain_id, len(g)) == (5, 2)
    r = g.best_route("A", "C", 10**20)
    assert [leg.kind for leg in r.paths[0].legs] == ["constant_product", "concentrated"]
    # The twin's graph from the same states answers the same.
    t = twin.RouteGraph(5)
    for s in states:
        apply_pool_state(t, s, twin.V3Pool)
    assert plain(t.best_route("A", "C", 10**20)) == plain(r)
    # A new state replaces the old one in place.
    apply_pool_state(g, states[0].model_copy(update={"reserve1": 2 * 10**24}))
    assert len(g) == 2
    assert g.best_route("A", "C", 10**20).amount_out > r.amount_out
    with pytest.raises(ValueError, match="chain"):
        apply_pool_state(g, states[0].model_copy(update={"chain_id": 1}))


def test_search_releases_the_gil() -> None:
    import threading

    g = rust.RouteGraph()
    for i in range(60):
        other = (i % 7 + 1 + (i // 7) % 6) % 7
        g.update_cp_pool(f"p{i}", "sim", f"T{i % 7}", f"T{other}", 10**20 + i, 10**20, 3000)
    results: list[Any] = []

    def work() -> None:
        results.append(g.best_route("T0", "T1", 10**18, 4, 3))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 4
    assert len({plain(r) for r in results}) == 1


PARALLEL = st.lists(
    st.one_of(
        st.tuples(
            st.just("cp"),
            st.just("T0"),
            st.just("T1"),
            st.integers(10**20, 10**22),
            st.integers(10**20, 10**22),
            st.sampled_from([500, 3000]),
        ),
        st.tuples(
            st.just("v3"),
            st.sampled_from(["T0", "T1"]),
            st.sampled_from(["T1", "T0"]),
            st.integers(-59, 59),
            st.lists(POSITION, min_size=1, max_size=3),
            st.booleans(),
            st.sampled_from([500, 3000]),
        ),
    ),
    min_size=2,
    max_size=6,
)


@SETTINGS
@given(
    specs=PARALLEL,
    amount=st.integers(10**17, 10**21),
    splits=st.integers(2, 4),
    exact_in=st.booleans(),
    gas=st.sampled_from([0, 10**6]),
)
def test_splits_rust_equals_twin(
    specs: list[tuple[Any, ...]], amount: int, splits: int, exact_in: bool, gas: int
) -> None:
    """Parallel pools between T0 and T1 and big amounts: the split path of the search."""
    r, p = build(rust, specs), build(twin, specs)
    q = (exact_in, ("T0", "T1"), amount, 2, splits, gas)
    got = outcome(lambda: query(r, *q))
    assert got == outcome(lambda: query(p, *q))


def exhaustive(g: Any, a: str, b: str, amount: int, hops: int, gas: int, exact_in: bool) -> Any:
    """The best single route by brute force over every simple path (no bounds, no pruning),
    from the twin's leg quotes: the reference for the branch and bound."""
    best: list[Any] = []

    def walk(token: str, seen: set[str], legs: list[tuple[Any, bool]]) -> None:
        for pid, (to, z) in g._adj[token].items():
            if to in seen:
                continue
            path = [*legs, (g._pools[pid], z)]
            if to == b:
                q = search.quote_path(path, amount, exact_in, gas)
                if q is not None and (not best or search.rank(q) < search.rank(best[0])):
                    best[:] = [q]
            elif len(path) < hops:
                walk(to, seen | {to}, path)

    if a in g._adj and b in g._adj:
        walk(a, {a}, [])
    return search.route([best[0]]) if best else None


@SETTINGS
@given(specs=SPECS, q=QUERY)
def test_bounds_never_cut_the_best_route(specs: list[tuple[Any, ...]], q: tuple[Any, ...]) -> None:
    exact_in, (a, b), amount, hops, _, gas = q
    expected = plain(exhaustive(build(twin, specs), a, b, amount, hops, gas, exact_in))
    assert plain(query(build(rust, specs), exact_in, (a, b), amount, hops, 1, gas)) == expected
