"""``sep bench plan_stage --books``: the plan stage on pools and order books while the books
move -- plan latency at ``--rate`` intents/s with ``--book-updates`` book messages/s, and the
combined route's saving over the best single venue, in basis points.

The market is ``sep bench split``'s: the repository topology's sim pools (WETH/USDC about
3,000) and the clob_a / clob_b exchanges with their makers (reference prices wandering 30 bps
over 10 minutes).  Before the clock starts, the two venues are run on a simulated clock
(``ClobVenue(clock_ms=...)``, 250 ms a step) and their books published as their book source
does (``BookPublication``: a snapshot per market every 5 s, sequenced deltas between), as
the JSON records ``sep.market.books`` carries; enough of them for the run.

The timed loop is ``plan_stage``'s (open-loop arrivals, batches of what has arrived): book
records due by now go through the planners' own ``BookFeed.apply`` (JSON parsing, the
replica's sequencing rules, the board), then each batch reads the pair's aggregated book once
(``BookBoard.book``: re-aggregated only after a change, as the stage does per batch) and
plans its intents one after another with ``plan_intent`` (pools only, books only and the
water-filled split compared after fees and gas; Python-bound, so one thread).  The intents
are WETH/USDC buys and sells of 0.1 to ``--max-weth`` WETH (log-uniform, seeded).

Two passes over the same schedule and the same records, in one process: **pools only**
(the baseline: the book records are applied but the planner is not given the book) and
**pools + books**.  Then, on the book as the run left it, the benchmark set (``--set``
intents) is planned three ways and the planner's choice is valued against the best single
venue (``bench.split.savings``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import split
from bench._common import pct
from pipeline.market.books import BookFeed
from pipeline.models.events import PlanCreated
from pipeline.models.intent import Intent
from pipeline.plugins.venue import VenueContext
from pipeline.stages.plan import plan_intent
from pipeline.stages.route_graphs import VenueGraphs
from pipeline.topology.models import Topology
from plugins.clob_venue import ClobVenue, ClobVenueConfig
from plugins.clob_venue.books import BookPublication, book_value

STEP_MS = 250
START_MS = 1_700_000_000_000
TARGET_P99_MS = 10.0


async def book_records(topology: Topology, directory: Path, count: int) -> list[bytes]:
    """At least ``count`` records of ``sep.market.books`` from the two clob venues run on a
    simulated clock (the first ones are their snapshots)."""
    assets = {a.symbol: a for a in topology.assets}
    now = [float(START_MS)]
    venues = []
    for name in split.BOOK_VENUES:
        config = ClobVenueConfig.model_validate(
            topology.plugins.venues[name].config, context={"assets": assets}
        )
        venue = ClobVenue(
            name, config, VenueContext(directory / name, assets), clock_ms=lambda: now[0]
        )
        await venue.start()
        publication = BookPublication(venue.market_infos(), config.snapshot_interval_ms)
        venues.append((venue, publication))
    records: list[bytes] = []
    try:
        while len(records) < count:
            for venue, publication in venues:
                states = await venue.books()
                records += [book_value(m) for m in publication.messages(states, int(now[0]))]
            now[0] += STEP_MS
    finally:
        for venue, _ in venues:
            await venue.stop()
    return records


def _pass(
    with_books: bool,
    todo: Sequence[Intent],
    records: Sequence[bytes],
    rate: float,
    updates: float,
    pools: dict[str, Any],
    graphs: Any,
    topology: Topology,
    routing: dict[str, Any],
    decimals: Any,
    warm: int,
) -> tuple[dict[str, Any], BookFeed]:
    feed = BookFeed("unused:9092", decimals)  # never started: its ``apply`` is the feed's path
    for value in records[:warm]:  # the venues' first snapshots: the feed is in sync
        feed.apply(value)
    n = len(todo)
    arrivals = [i / rate for i in range(n)]
    update_at = [i / updates for i in range(len(records) - warm)] if updates > 0 else []
    plan_ms: list[float] = []
    cpu_ms: list[float] = []
    latency_ms: list[float] = []
    apply_us: list[float] = []
    batch_ms: list[float] = []
    created = split_plans = applied = nxt = 0
    aggregations = feed.board.aggregations
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    while nxt < n:
        now = time.perf_counter() - t0
        if arrivals[nxt] > now:
            time.sleep(min(arrivals[nxt] - now, 0.001))
            continue
        while applied < len(update_at) and update_at[applied] <= now:
            a0 = time.perf_counter()
            feed.apply(records[warm + applied])
            apply_us.append((time.perf_counter() - a0) * 1e6)
            applied += 1
        end = nxt
        while end < n and arrivals[end] <= now:
            end += 1
        b0 = time.perf_counter()
        book = feed.book("WETH", "USDC") if with_books else None  # once per batch
        for i in range(nxt, end):
            p0, c0 = time.perf_counter(), time.thread_time()
            result = plan_intent(todo[i], 5, pools, topology, graphs, routing, book)
            done = time.perf_counter()
            cpu_ms.append((time.thread_time() - c0) * 1e3)
            plan_ms.append((done - p0) * 1e3)
            latency_ms.append((done - t0 - arrivals[i]) * 1e3)
            if isinstance(result, PlanCreated):
                created += 1
                split_plans += len({s.kind for s in result.plan.steps}) == 2
        batch_ms.append((time.perf_counter() - b0) * 1e3)
        nxt = end
    elapsed = time.perf_counter() - t0
    gc.unfreeze()
    fig: dict[str, Any] = {
        "mode": "pools+books" if with_books else "pools only",
        "intents": n,
        "plans_created": created,
        "split_plans": split_plans,
        "book_updates": applied,
        "book_updates_per_s": round(applied / elapsed, 1),
        "book_apply_mean_us": round(sum(apply_us) / len(apply_us), 1) if apply_us else 0.0,
        "aggregations": feed.board.aggregations - aggregations,
        "batches": len(batch_ms),
        "achieved_rate": round(n / elapsed, 1),
        "busy": round(sum(batch_ms) / 1e3 / elapsed, 3),
    }
    # Wall time and this thread's CPU time per plan: on a machine shared with other work
    # (its load is printed), the difference is time the planner was not running.
    for name, values in (("plan", plan_ms), ("plan_cpu", cpu_ms), ("latency", latency_ms)):
        fig[f"{name}_mean_ms"] = round(sum(values) / len(values), 3)
        fig[f"{name}_p50_ms"] = round(pct(values, 0.5), 3)
        fig[f"{name}_p99_ms"] = round(pct(values, 0.99), 3)
        fig[f"{name}_max_ms"] = round(max(values), 3)
    fig["within_target"] = fig["plan_p99_ms"] <= TARGET_P99_MS
    return fig, feed


def run(
    rate: float, seconds: float, updates: float, seed: int, max_weth: float, bench_set: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        topology = split.market_topology(Path(tmp), steady=False)
        n = max(1, int(rate * seconds))
        records = asyncio.run(
            book_records(topology, Path(tmp) / "books", int(updates * seconds) + 2)
        )
        setup, _ = asyncio.run(split.market(topology, Path(tmp) / "pools"))
    pools, routing = setup["pools"], setup["routing"]
    graphs = VenueGraphs().sync(pools)
    decimals = {a.symbol: a.decimals for a in topology.assets}.get
    # Arrivals in a shuffled order of sizes, the same for both passes.
    todo = split.intents(topology, n, max_weth, seed)
    random.Random(seed).shuffle(todo)
    warm = 2  # the two venues' first snapshots
    passes = []
    feed = None
    for with_books in (False, True):
        fig, feed = _pass(
            with_books,
            todo,
            records,
            rate,
            updates,
            pools,
            graphs,
            topology,
            routing,
            decimals,
            warm,
        )
        passes.append(fig)
    assert feed is not None
    book = feed.book("WETH", "USDC")
    assert book is not None
    saving = split.savings(
        split.intents(topology, bench_set, max_weth, seed + 1),
        pools,
        graphs,
        topology,
        routing,
        book,
    )
    asks, bids = book.book.asks, book.book.bids
    return {
        "rate": rate,
        "seconds": seconds,
        "book_updates_per_s": updates,
        "passes": passes,
        "bench_set": {"intents": bench_set, "max_weth": max_weth, **saving},
        "books_best_bid": str(book.price(bids[0][0])) if bids else None,
        "books_best_ask": str(book.price(asks[0][0])) if asks else None,
        "routing": sorted(routing),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"plan stage at {result['rate']:g} intents/s (WETH/USDC, sim pools + clob_a/clob_b books) "
        f"with {result['book_updates_per_s']:g} book updates/s, {result['seconds']:g} s per pass, "
        f"one planning thread; milliseconds"
    )
    print(
        f"{'mode':>12} {'plan p50':>9} {'plan p99':>9} {'plan max':>9} {'cpu p99':>8} "
        f"{'lat p50':>8} {'lat p99':>8} {'lat max':>8} {'rate/s':>8} {'upd/s':>6} {'apply us':>9} "
        f"{'splits':>7} {'busy':>5} {'target':>7}"
    )
    for f in result["passes"]:
        print(
            f"{f['mode']:>12} {f['plan_p50_ms']:>9.3f} {f['plan_p99_ms']:>9.3f} "
            f"{f['plan_max_ms']:>9.2f} {f['plan_cpu_p99_ms']:>8.3f} {f['latency_p50_ms']:>8.3f} "
            f"{f['latency_p99_ms']:>8.2f} "
            f"{f['latency_max_ms']:>8.2f} {f['achieved_rate']:>8.1f} "
            f"{f['book_updates_per_s']:>6.1f} {f['book_apply_mean_us']:>9.1f} "
            f"{f['split_plans']:>7} {f['busy']:>5.2f} "
            f"{'met' if f['within_target'] else 'MISSED':>7}"
        )
    s = result["bench_set"]
    print(
        f"benchmark set: {s['intents']} intents of 0.1-{s['max_weth']:g} WETH on the books as the "
        f"run left them (all-in bid {result['books_best_bid']}, ask {result['books_best_ask']}): "
        f"{s['splits']} of {s['planned']} split ({s['split_share']:.0%}); saving over the best "
        f"single venue: mean {s['saving_bps_mean']:.2f} bps, {s['saving_bps_mean_of_splits']:.2f} "
        f"bps over the splits, max {s['saving_bps_max']:.2f} bps"
    )
    print(f"target: plan p99 <= {TARGET_P99_MS:g} ms; load average {result['load']}")
