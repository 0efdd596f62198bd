"""``sep bench books``: order-book aggregation and sweeps, Rust against its pure-Python twin.

Builds ``--venues`` books (default 20) of ``--levels`` price levels per side (default 1,000; so
40,000 levels in all), on a shared tick grid so venues quote many of the same prices, then times

    aggregate   aggregate_books(books): the merge into one consolidated book
    sweep_top   sweep(book, "buy", qty) taking about the top 10 ask prices
    sweep_deep  sweep(book, "buy", qty) taking half the ask depth

each as p50/p99 latency in microseconds over ``--runs`` calls (the twin gets a tenth of the
runs, at least 5), and the speed-up as python p50 / rust p50. Both implementations' results
are checked equal first. Prints a table, the machine, and last a JSON line
``{"bench": "books", ...}``. The default run takes well under a minute.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pipeline.ops as rust
from bench._common import json_line, machine, pct
from pipeline.ops.twin import books as twin

FEES = (0, 100, 250, 500, 1000, 3000)
MID = 1_000_000  # ticks
TARGET_AGGREGATE_US = 200.0


def make_specs(venues: int, levels: int, seed: int) -> list[Any]:
    """Per venue ``(name, bids, asks, fee)``: prices step 1-3 ticks away from the mid, sizes
    1e15..1e21 base units (0.001 to 1000 of an 18-decimal token)."""
    rng = random.Random(seed)
    specs = []
    for v in range(venues):

        def side(sign: int) -> list[tuple[int, int]]:
            price, out = MID + sign * rng.randint(1, 3), []
            for _ in range(levels):
                out.append((price, rng.randint(10**15, 10**21)))
                price += sign * rng.randint(1, 3)
            return out

        bids, asks = side(-1), side(+1)
        specs.append((f"venue{v:02d}", bids, asks, rng.choice(FEES)))
    return specs


def _percentiles(fn: Callable[[], object], runs: int) -> dict[str, float]:
    """p50 and p99 of ``runs`` timed calls (after 2 warm-ups), microseconds."""
    for _ in range(2):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return {"p50_us": round(pct(samples, 0.5), 1), "p99_us": round(pct(samples, 0.99), 1)}


def _plain_sweep(s: Any) -> tuple[Any, ...]:
    return (s.filled_qty, s.notional, s.fees, s.avg_price, s.worst_price, s.fills, s.venue_fills)


def _cases(
    ops: ModuleType, books: list[Any], book: Any, top_qty: int, deep_qty: int
) -> dict[str, Callable[[], object]]:
    def aggregate() -> object:
        return ops.aggregate_books(books)

    def sweep_top() -> object:
        return ops.sweep(book, "buy", top_qty)

    def sweep_deep() -> object:
        return ops.sweep(book, "buy", deep_qty)

    return {"aggregate": aggregate, "sweep_top": sweep_top, "sweep_deep": sweep_deep}


def run(venues: int, levels: int, runs: int, seed: int) -> dict[str, Any]:
    specs = make_specs(venues, levels, seed)
    built: dict[str, tuple[ModuleType, list[Any], Any]] = {}
    for name, ops in (("rust", rust), ("python", twin)):
        books = [ops.Book(*spec) for spec in specs]
        built[name] = (ops, books, ops.aggregate_books(books))
    consolidated = built["rust"][2]
    asks = consolidated.asks
    top_qty = sum(total for _, total, _ in asks[:10])
    deep_qty = sum(total for _, total, _ in asks) // 2
    r_book, p_book = built["rust"][2], built["python"][2]
    assert (r_book.venues, r_book.fees, r_book.bids, r_book.asks) == (
        p_book.venues,
        p_book.fees,
        p_book.bids,
        p_book.asks,
    ), "aggregation: the implementations disagree"
    for qty in (top_qty, deep_qty):
        r, p = rust.sweep(r_book, "buy", qty), twin.sweep(p_book, "buy", qty)
        assert _plain_sweep(r) == _plain_sweep(p), "sweep: the implementations disagree"
    deep = rust.sweep(r_book, "buy", deep_qty)

    figures: dict[str, Any] = {}
    for name, (ops, books, book) in built.items():
        n = runs if name == "rust" else max(5, runs // 10)
        cases = _cases(ops, books, book, top_qty, deep_qty)
        for case, fn in cases.items():
            for stat, value in _percentiles(fn, n).items():
                figures[f"{case}_{name}_{stat}"] = value
    for case in ("aggregate", "sweep_top", "sweep_deep"):
        ratio = figures[f"{case}_python_p50_us"] / figures[f"{case}_rust_p50_us"]
        figures[f"{case}_ratio"] = round(ratio, 1)
    return {
        "venues": venues,
        "levels_per_side": levels,
        "consolidated_bid_levels": len(consolidated.bids),
        "consolidated_ask_levels": len(asks),
        "sweep_deep_fills": len(deep.fills),
        "runs": runs,
        "aggregate_target_us": TARGET_AGGREGATE_US,
        "aggregate_within_target": figures["aggregate_rust_p50_us"] <= TARGET_AGGREGATE_US,
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench books",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--venues", type=int, default=20)
    parser.add_argument("--levels", type=int, default=1000, help="price levels per side")
    parser.add_argument("--runs", type=int, default=300, help="timed calls per Rust case")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args.venues, args.levels, args.runs, args.seed)
    print(f"machine: {machine()}")
    print(
        f"{result['venues']} venues x {result['levels_per_side']} levels per side -> "
        f"{result['consolidated_bid_levels']} bid / {result['consolidated_ask_levels']} ask "
        f"consolidated levels; deep sweep = {result['sweep_deep_fills']} fills; microseconds"
    )
    print(f"{'operation':<12}{'rust p50':>11}{'rust p99':>11}{'python p50':>13}"
          f"{'python p99':>13}{'ratio':>9}")  # fmt: skip
    for case in ("aggregate", "sweep_top", "sweep_deep"):
        print(
            f"{case:<12}{result[f'{case}_rust_p50_us']:>11.1f}"
            f"{result[f'{case}_rust_p99_us']:>11.1f}{result[f'{case}_python_p50_us']:>13.1f}"
            f"{result[f'{case}_python_p99_us']:>13.1f}{result[f'{case}_ratio']:>8.1f}x"
        )
    verdict = "within" if result["aggregate_within_target"] else "MISSES"
    print(f"aggregation p50 {verdict} the {TARGET_AGGREGATE_US:.0f} us target")
    print(json_line({"bench": "books", "machine": machine(), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
