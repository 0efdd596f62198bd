"""``sep bench split``: one route over pools and books -- what the combined plan saves over
the best single venue, in basis points, on a benchmark set of intents, and what planning
with books costs.

The market is the repository topology's: the sim venue's pools (WETH/USDC about 3,000, 0.05 %
and 0.30 % pools) and the clob_a / clob_b exchanges as their makers quote now (their reference
price wanders with time unless ``--steady``), aggregated as the plan stage does
(``BookBoard``).  The set: ``--intents`` WETH/USDC intents, buys and sells in turn, amounts
log-uniform from 0.1 to ``--max-weth`` WETH (seeded).  Each is planned on the same market
three ways -- pools only, books only, and the planner's choice (pools, books, or a split of
the two by water-filling, ``pipeline/stages/split_planning.py``) -- and valued from its
steps: quote paid (a buy) or received (a sell), gas included.

    saving_bps   (choice - best single) / best single, in bps of the best single venue's value
                 (0 where the choice is one of them); mean over the set, and over the splits
    split_share  how many intents were split
    cpu_us       CPU per intent planning pools only, and with the books (median of 5 passes)

Prints a table, the machine, and last a JSON line ``{"bench": "split", ...}``.  Runs in
seconds, no services.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from bench._common import json_line, machine
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.models.events import PlanCreated
from pipeline.models.intent import Intent
from pipeline.plugins.manager import build_venues
from pipeline.plugins.venue import routing_of
from pipeline.samples import submission
from pipeline.stages.book_planning import plan_on_books
from pipeline.stages.plan import plan_intent
from pipeline.stages.route_graphs import VenueGraphs
from pipeline.stages.split_planning import SplitPlanner
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from pipeline.topology.models import Topology
from plugins.clob_venue import ClobVenue
from plugins.clob_venue.books import snapshot

BOOK_VENUES = ("clob_a", "clob_b")


def market_topology(directory: Path, steady: bool) -> Topology:
    """The repository's topology with the book venues on and the chain venue off."""
    data = yaml.safe_load(Path(DEFAULT_PATH).read_text())
    venues = data["plugins"]["venues"]
    venues["uniswap_v3"]["enabled"] = False
    for name in BOOK_VENUES:
        venues[name]["enabled"] = True
        if steady:
            for market in venues[name]["config"]["markets"].values():
                market["volatility_bps"] = "0"
    path = directory / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_topology(path)


async def market(topology: Topology, directory: Path) -> tuple[dict[str, Any], AggregatedBook]:
    venues = build_venues(topology, directory)
    for venue in venues.values():
        await venue.start()
    try:
        pools = {"sim": await venues["sim"].pools()}
        board = BookBoard(lambda s: topology.asset(s).decimals)
        now = int(time.time() * 1000)
        for name in BOOK_VENUES:
            venue = venues[name]
            assert isinstance(venue, ClobVenue)
            states = await venue.books()
            for market_id, info in venue.market_infos().items():
                board.apply(snapshot(info, states[market_id], now))
        book = board.book("WETH", "USDC")
        assert book is not None
        routing = {name: routing_of(v) for name, v in venues.items()}
        return {"pools": pools, "routing": routing}, book
    finally:
        for venue in venues.values():
            await venue.stop()


def intents(topology: Topology, count: int, max_weth: float, seed: int) -> list[Intent]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        amount = math.exp(rng.uniform(math.log(0.1), math.log(max_weth)))
        data = submission(
            topology,
            ("ACQUIRE", "DISPOSE")[i % 2],
            "WETH",
            "USDC",
            f"{amount:.4f}",
            max_slippage="0.03",
            venues=["sim", *BOOK_VENUES],
        )
        out.append(Intent.model_validate({**data, "id": f"intent-bench-{i}", "createdAtMs": 1}))
    return out


def cpu_us(fn: Any, items: list[Intent]) -> float:
    passes = []
    for _ in range(5):
        started = time.process_time()
        for item in items:
            fn(item)
        passes.append((time.process_time() - started) / len(items) * 1e6)
    return statistics.median(passes)


def savings(
    batch: list[Intent],
    pools: dict[str, Any],
    graphs: Any,
    topology: Topology,
    routing: dict[str, Any],
    book: AggregatedBook,
) -> dict[str, Any]:
    """The planner's choice against the best single venue over ``batch`` (see the module
    docstring): planned, splits, split_share and the saving in bps (mean, over the splits,
    max)."""
    saved, split_saved = [], []
    splits = planned = 0
    for intent in batch:
        planner = SplitPlanner(intent, book, graphs, topology, routing)
        chosen = plan_intent(intent, 5, pools, topology, graphs, routing, book)
        alone = plan_intent(intent, 5, pools, topology, graphs, routing)
        books = plan_on_books(intent, 5, book)
        # Valued without gas: the sim venue pays none (``Routing.pays_gas``).
        values = [planner.value(p.plan, 0) for p in (alone, books) if isinstance(p, PlanCreated)]
        if not isinstance(chosen, PlanCreated) or not values:
            continue
        planned += 1
        best = max(values)
        got = planner.value(chosen.plan, 0)
        saving = float((got - best) / abs(best) * Fraction(10_000))
        saved.append(saving)
        kinds = {s.kind for s in chosen.plan.steps}
        if len(kinds) == 2:
            splits += 1
            split_saved.append(saving)
    return {
        "planned": planned,
        "splits": splits,
        "split_share": splits / planned if planned else 0.0,
        "saving_bps_mean": statistics.fmean(saved) if saved else 0.0,
        "saving_bps_mean_of_splits": statistics.fmean(split_saved) if split_saved else 0.0,
        "saving_bps_max": max(saved, default=0.0),
    }


def run(count: int, max_weth: float, seed: int, steady: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        topology = market_topology(Path(tmp), steady)
        setup, book = asyncio.run(market(topology, Path(tmp)))
    pools, routing = setup["pools"], setup["routing"]
    graphs = VenueGraphs().sync(pools)
    figures = savings(
        intents(topology, count, max_weth, seed), pools, graphs, topology, routing, book
    )
    sample = intents(topology, min(count, 200), max_weth, seed)
    pools_cpu = cpu_us(lambda i: plan_intent(i, 5, pools, topology, graphs, routing), sample)
    books_cpu = cpu_us(lambda i: plan_intent(i, 5, pools, topology, graphs, routing, book), sample)
    asks, bids = book.book.asks, book.book.bids
    return {
        "intents": count,
        **figures,
        "books_best_bid": str(book.price(bids[0][0])) if bids else None,
        "books_best_ask": str(book.price(asks[0][0])) if asks else None,
        "cpu_us_pools_only": pools_cpu,
        "cpu_us_with_books": books_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--intents", type=int, default=500)
    parser.add_argument("--max-weth", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--steady", action="store_true", help="the makers quote around 3,000 (no volatility)"
    )
    args = parser.parse_args(argv)
    result = run(args.intents, args.max_weth, args.seed, args.steady)
    print(f"machine: {machine()}")
    print(
        f"books (all-in) best bid {result['books_best_bid']}, best ask "
        f"{result['books_best_ask']}; {result['planned']} of {result['intents']} intents "
        f"planned, {result['splits']} split ({result['split_share']:.0%})"
    )
    print(
        f"saving over the best single venue: mean {result['saving_bps_mean']:.2f} bps, "
        f"{result['saving_bps_mean_of_splits']:.2f} bps over the splits, "
        f"max {result['saving_bps_max']:.2f} bps"
    )
    print(
        f"CPU per intent: pools only {result['cpu_us_pools_only']:.0f} us, with books "
        f"{result['cpu_us_with_books']:.0f} us"
    )
    print(json_line({"bench": "split", "machine": machine(), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
