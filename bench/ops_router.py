"""Micro-benchmark: best_route_exact_in / exact_out over random pools, Rust against its twin.

Run: ``python bench/ops_router.py [--pools 1000 --tokens 100 --queries 20 --hops 3]``.
Prints a table (rust and python side by side, so the speed-up is one line per operation), the
machine it ran on, and last a JSON line ``{"bench": "ops_router", ...}`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pipeline.ops as rust
from pipeline.ops import twin

FEES = (100, 500, 3000, 10_000)


def make_pools(ops: ModuleType, n: int, tokens: int, seed: int) -> list[Any]:
    """``n`` pools between random pairs of ``tokens`` tokens, 1e18..1e24 reserves."""
    rng = random.Random(seed)
    pools = []
    for i in range(n):
        a, b = rng.sample(range(tokens), 2)
        pools.append(
            ops.Pool(
                f"pool{i:05d}",
                "sim",
                f"T{a:03d}",
                f"T{b:03d}",
                rng.randrange(10**18, 10**24),
                rng.randrange(10**18, 10**24),
                rng.choice(FEES),
            )
        )
    return pools


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``repeats`` runs, seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(pools: int, tokens: int, queries: int, hops: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    pairs = [tuple(f"T{t:03d}" for t in rng.sample(range(tokens), 2)) for _ in range(queries)]
    amount_in, amount_out = 10**18, 10**17
    figures: dict[str, Any] = {}
    routes: dict[str, list[Any]] = {}
    for name, ops in (("rust", rust), ("python", twin)):
        ps = make_pools(ops, pools, tokens, seed)
        pool_set = ops.PoolSet(ps)

        def exact_in(ops: ModuleType = ops, ps: list[Any] = ps) -> list[Any]:
            return [ops.best_route_exact_in(ps, a, b, amount_in, hops) for a, b in pairs]

        def exact_in_poolset(s: Any = pool_set) -> list[Any]:
            return [s.best_route_exact_in(a, b, amount_in, hops) for a, b in pairs]

        def exact_out_poolset(s: Any = pool_set) -> list[Any]:
            return [s.best_route_exact_out(a, b, amount_out, hops) for a, b in pairs]

        repeats = 5 if name == "rust" else 3
        cases: dict[str, Callable[[], list[Any]]] = {
            "exact_in": exact_in,
            "exact_in_poolset": exact_in_poolset,
            "exact_out_poolset": exact_out_poolset,
        }
        for case, fn in cases.items():
            figures[f"{case}_{name}_ms"] = best_of(repeats, fn) / queries * 1e3
        routes[name] = [
            (r.amount_out, [leg.pool_id for leg in r.legs]) if r else None
            for r in exact_in_poolset()
        ]
    assert routes["rust"] == routes["python"], "the implementations disagree"
    for case in ("exact_in", "exact_in_poolset", "exact_out_poolset"):
        figures[f"{case}_ratio"] = figures[f"{case}_python_ms"] / figures[f"{case}_rust_ms"]
    found = sum(r is not None for r in routes["rust"])
    return {"pools": pools, "tokens": tokens, "queries": queries, "max_hops": hops,
            "routes_found": found, **figures}  # fmt: skip


def machine() -> str:
    return (
        f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--hops", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = run(args.pools, args.tokens, args.queries, args.hops, args.seed)
    print(f"machine: {machine()}")
    print(
        f"{result['pools']} pools, {result['tokens']} tokens, max_hops {result['max_hops']}, "
        f"{result['queries']} queries ({result['routes_found']} routed); ms per query"
    )
    print(f"{'operation':<22}{'rust':>10}{'python':>12}{'ratio':>10}")
    for case in ("exact_in", "exact_in_poolset", "exact_out_poolset"):
        print(
            f"{case:<22}{result[f'{case}_rust_ms']:>10.3f}{result[f'{case}_python_ms']:>12.3f}"
            f"{result[f'{case}_ratio']:>9.0f}x"
        )
    print(json.dumps({"bench": "ops_router", "machine": machine(), **result}))


if __name__ == "__main__":
    main()
