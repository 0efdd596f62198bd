"""``sep bench router``: RouteGraph best-route latency over 100, 1k and 10k pools, Rust against
its pure-Python twin, for exact input and exact output, and the cost of a pool update.

The token universe is a realistic shape: a few hub tokens (WETH, USDC, ...) paired with each
other in several pools (fee tiers, venues), and many leaf tokens each paired with one to three
hubs; about half the pools are exact Uniswap V3 pools (tick data, three positions around the
price), the rest constant-product. Prices are consistent across pools, so multi-hop and split
routes are real competitors. Queries are random pairs (mostly leaf to leaf, so three hops),
amounts worth $1k-$100k, ``max_hops=3``, ``max_splits`` 1 and 4, no gas price.

The twin is timed on fewer queries than Rust (it is slow on large graphs; the table says how
many), and the speed-up is the ratio of the medians *on those same queries*. Every twin answer
is checked equal to Rust's. Ends with one JSON line ``{"bench": "router", ...}``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pipeline.ops as rust
from bench._common import json_line, machine, pct
from pipeline.ops import twin

HUBS = {"WETH": 3000.0, "USDC": 1.0, "USDT": 1.0, "DAI": 1.0, "WBTC": 60000.0, "ARB": 1.2}
SPACING = 60
E18 = 10**18

# ("cp", id, t0, t1, r0, r1, fee) or ("v3", id, t0, t1, sqrt_price, liquidity, tick, fee, ticks)
Spec = tuple[Any, ...]


def universe(n_pools: int, seed: int) -> tuple[list[Spec], dict[str, float]]:
    """``n_pools`` pools over the hubs and ``n_pools // 3`` leaf tokens."""
    rng = random.Random(seed)
    prices = dict(HUBS)
    hubs = list(HUBS)
    leaves = [f"L{i:05d}" for i in range(max(4, n_pools // 3))]
    for leaf in leaves:
        prices[leaf] = 10 ** rng.uniform(-3, 2)
    specs: list[Spec] = []
    hub_pairs = [(a, b) for i, a in enumerate(hubs) for b in hubs[i + 1 :]]
    # Hub pairs: ~10 % of the pools, several per pair.
    for k in range(max(len(hub_pairs), n_pools // 10)):
        a, b = hub_pairs[k % len(hub_pairs)]
        specs.append(pool(rng, len(specs), a, b, prices, rng.uniform(1e6, 5e7)))
    while len(specs) < n_pools:
        leaf = rng.choice(leaves)
        hub = rng.choice(hubs[:3]) if rng.random() < 0.8 else rng.choice(hubs)
        a, b = (leaf, hub) if rng.random() < 0.5 else (hub, leaf)
        specs.append(pool(rng, len(specs), a, b, prices, 10 ** rng.uniform(4, 6.5)))
    return specs, prices


def pool(
    rng: random.Random, i: int, t0: str, t1: str, prices: dict[str, float], depth_usd: float
) -> Spec:
    """A pool worth ``depth_usd`` at the universe's prices (18-decimal tokens)."""
    x = int(depth_usd / 2 / prices[t0] * E18)  # token0 reserve
    y = int(depth_usd / 2 / prices[t1] * E18)
    jitter = 1 + rng.uniform(-0.003, 0.003)
    if rng.random() < 0.5:
        return ("cp", f"cp{i:05d}", t0, t1, x, int(y * jitter), rng.choice([500, 3000]))
    # V3: price token1/token0 = y/x; positions of widths 10, 50 and 400 spacings.
    tick = math.floor(math.log(y / x * jitter) / math.log(1.0001))
    tick = max(-800_000, min(800_000, tick))
    base_l = int(math.sqrt(x * y))
    net: dict[int, int] = {}
    active = 0
    for width, share in ((10, 0.5), (50, 0.3), (400, 0.2)):
        lo = (tick // SPACING - width) * SPACING
        hi = (tick // SPACING + width) * SPACING
        liq = int(base_l * share)
        net[lo] = net.get(lo, 0) + liq
        net[hi] = net.get(hi, 0) - liq
        active += liq
    price = twin.sqrt_ratio_at_tick(tick) + 1
    ticks = tuple(sorted(net.items()))
    return ("v3", f"v3{i:05d}", t0, t1, price, active, tick, rng.choice([500, 3000]), ticks)


def add(ops: ModuleType, graph: Any, s: Spec) -> None:
    if s[0] == "cp":
        graph.update_cp_pool(s[1], "sim", s[2], s[3], s[4], s[5], s[6])
    else:
        _, pid, t0, t1, price, liquidity, tick, fee, ticks = s
        graph.update_v3_pool(
            pid, "uni", t0, t1, ops.V3Pool(price, liquidity, tick, SPACING, fee, ticks)
        )


def queries(
    specs: Sequence[Spec], prices: dict[str, float], n: int, seed: int
) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    leaves = sorted({t for s in specs for t in s[2:4] if t not in HUBS})
    hubs = list(HUBS)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.7:
            a, b = rng.sample(leaves, 2)
        elif r < 0.9:
            a, b = rng.choice(leaves), rng.choice(hubs)
        else:
            a, b = rng.sample(hubs, 2)
        usd = 10 ** rng.uniform(3, 5)
        out.append((a, b, int(usd / prices[a] * E18)))
    return out


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def add_all(ops: ModuleType, graph: Any, specs: Sequence[Spec]) -> None:
    for s in specs:
        add(ops, graph, s)


def plain(value: Any) -> Any:
    if value is None or isinstance(value, int | str | bool):
        return value
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    names = sorted(
        n for n in dir(value) if not n.startswith("_") and not callable(getattr(value, n))
    )
    return tuple((n, plain(getattr(value, n))) for n in names)


def update_cp(graph: Any, states: list[tuple[Any, ...]]) -> None:
    for pid, a, b, r0, r1, fee in states:
        graph.update_cp_pool(pid, "sim", a, b, r0, r1, fee)


def update_v3(graph: Any, states: list[tuple[Spec, Any]]) -> None:
    for s, pool in states:
        graph.update_v3_pool(s[1], "uni", s[2], s[3], pool)


def compare(
    graphs: dict[str, Any],
    method: str,
    qs: Sequence[tuple[str, str, int]],
    splits: int,
    n_twin: int,
) -> tuple[list[float], list[Any], list[float]]:
    """``method`` timed on Rust for every query and on the twin for the first ``n_twin``,
    whose answers must be Rust's: (Rust times, Rust answers, twin times)."""
    times, answers = [], []
    for a, b, amount in qs:
        t, r = timed(getattr(graphs["rust"], method), a, b, amount, 3, splits)
        times.append(t)
        answers.append(r)
    twin_times = []
    for (a, b, amount), expected in zip(qs[:n_twin], answers, strict=False):
        t, r = timed(getattr(graphs["python"], method), a, b, amount, 3, splits)
        twin_times.append(t)
        if plain(r) != plain(expected):
            raise AssertionError(f"twin differs from Rust on {method} {a}->{b} {amount}")
    return times, answers, twin_times


def run_size(n_pools: int, n_queries: int, n_twin: int, seed: int) -> dict[str, Any]:
    specs, prices = universe(n_pools, seed)
    qs = queries(specs, prices, n_queries, seed + 1)
    fig: dict[str, Any] = {"pools": n_pools, "queries": n_queries, "twin_queries": n_twin}
    graphs = {}
    for name, ops in (("rust", rust), ("python", twin)):
        g = ops.RouteGraph(1)
        t, _ = timed(add_all, ops, g, specs)
        fig[f"build_{name}_ms"] = t * 1e3
        graphs[name] = g
    routed = 0
    for splits in (1, 4):
        times, answers, twin_times = compare(graphs, "best_route", qs, splits, n_twin)
        routed = sum(r is not None for r in answers)
        split_used = sum(r is not None and len(r.paths) > 1 for r in answers)
        key = f"s{splits}"
        fig[f"{key}_rust_p50_us"] = statistics.median(times) * 1e6
        fig[f"{key}_rust_p99_us"] = pct(times, 0.99) * 1e6
        fig[f"{key}_python_p50_us"] = statistics.median(twin_times) * 1e6
        fig[f"{key}_python_p99_us"] = pct(twin_times, 0.99) * 1e6
        fig[f"{key}_speedup"] = statistics.median(twin_times) / statistics.median(times[:n_twin])
        fig[f"{key}_split_used"] = split_used
        # Exact output (ACQUIRE): buy what the exact-in route delivered, so every query is
        # feasible; the same pairs, the twin checked equal again.
        wanted = [
            (a, b, r.amount_out)
            for (a, b, _), r in zip(qs, answers, strict=True)
            if r is not None and r.amount_out > 0
        ]
        out_times, _, out_twin = compare(graphs, "best_route_exact_out", wanted, splits, n_twin)
        fig[f"{key}_out_queries"] = len(wanted)
        fig[f"{key}_out_rust_p50_us"] = statistics.median(out_times) * 1e6
        fig[f"{key}_out_rust_p99_us"] = pct(out_times, 0.99) * 1e6
        fig[f"{key}_out_rust_max_us"] = max(out_times) * 1e6
        fig[f"{key}_out_speedup"] = statistics.median(out_twin) / statistics.median(
            out_times[: len(out_twin)]
        )
    fig["routed"] = routed
    # Updates: a new state for an existing pool (the hot case), from Python.
    rng = random.Random(seed + 2)
    for name, ops in (("rust", rust), ("python", twin)):
        g = graphs[name]
        picks = [rng.choice(specs) for _ in range(2000)]
        cp = [s for s in picks if s[0] == "cp"]
        v3 = [s for s in picks if s[0] == "v3"]
        cp_new = [(s[1], s[2], s[3], s[4] + rng.randrange(1, 10**12), s[5], s[6]) for s in cp]
        t, _ = timed(update_cp, g, cp_new)
        fig[f"update_cp_{name}_us"] = t / max(1, len(cp_new)) * 1e6
        v3_pools = [(s, ops.V3Pool(s[4], s[5], s[6], SPACING, s[7], s[8])) for s in v3]
        t, _ = timed(update_v3, g, v3_pools)
        fig[f"update_v3_{name}_us"] = t / max(1, len(v3_pools)) * 1e6
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sep bench router", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="pool counts")
    parser.add_argument("--queries", type=int, default=300, help="Rust queries per size")
    parser.add_argument(
        "--twin-queries",
        default="40,15,5",
        help="twin queries per size (the twin is slow on big graphs)",
    )
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    twin_n = [int(s) for s in args.twin_queries.split(",")]
    twin_n += [twin_n[-1]] * (len(sizes) - len(twin_n))
    results = [
        run_size(n, args.queries, min(t, args.queries), args.seed)
        for n, t in zip(sizes, twin_n, strict=False)
    ]

    print(f"machine: {machine()}")
    print("RouteGraph best_route, max_hops=3")
    head = (
        f"{'pools':>6} {'splits':>6} {'rust p50':>10} {'rust p99':>10} {'twin p50':>10} "
        f"{'twin p99':>10} {'speed-up':>9} {'twin n':>6} {'split used':>10}"
    )
    print(head)
    for f in results:
        for s in (1, 4):
            k = f"s{s}"
            print(
                f"{f['pools']:>6} {s:>6} {f[k + '_rust_p50_us']:>8.0f}us "
                f"{f[k + '_rust_p99_us']:>8.0f}us {f[k + '_python_p50_us'] / 1e3:>8.1f}ms "
                f"{f[k + '_python_p99_us'] / 1e3:>8.1f}ms {f[k + '_speedup']:>8.0f}x "
                f"{f['twin_queries']:>6} {f[k + '_split_used']:>4}/{f['queries']}"
            )
    print("\nexact output (best_route_exact_out, amounts the exact-in routes delivered)")
    print(
        f"{'pools':>6} {'splits':>6} {'rust p50':>10} {'rust p99':>10} {'rust max':>10} "
        f"{'speed-up':>9} {'queries':>8}"
    )
    for f in results:
        for s in (1, 4):
            k = f"s{s}_out"
            print(
                f"{f['pools']:>6} {s:>6} {f[k + '_rust_p50_us']:>8.0f}us "
                f"{f[k + '_rust_p99_us']:>8.0f}us {f[k + '_rust_max_us']:>8.0f}us "
                f"{f[k + '_speedup']:>8.0f}x {f[k + '_queries']:>8}"
            )
    print(
        f"\n{'pools':>6} {'build rust':>11} {'build twin':>11} {'upd cp rust':>12} "
        f"{'upd v3 rust':>12} {'upd cp twin':>12} {'upd v3 twin':>12}"
    )
    for f in results:
        print(
            f"{f['pools']:>6} {f['build_rust_ms']:>9.1f}ms {f['build_python_ms']:>9.1f}ms "
            f"{f['update_cp_rust_us']:>10.2f}us {f['update_v3_rust_us']:>10.2f}us "
            f"{f['update_cp_python_us']:>10.2f}us {f['update_v3_python_us']:>10.2f}us"
        )
    big = results[-1]
    targets = {
        "p50_10k_le_2ms": big["s1_rust_p50_us"] <= 2000,
        "speedup_ge_50x": big["s1_speedup"] >= 50,
    }
    print(
        f"\ntargets (largest graph, max_splits=1): p50 <= 2 ms "
        f"{'met' if targets['p50_10k_le_2ms'] else 'MISSED'}; >= 50x the twin "
        f"{'met' if targets['speedup_ge_50x'] else 'MISSED'}"
    )
    print(
        json_line({"bench": "router", "machine": machine(), "sizes": results, "targets": targets})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
