"""``sep bench backtest``: market events/s and intents/s through the in-memory runtime.

One process, no services: the backtest driver (``pipeline.backtest.driver``) over generated
data (a random walk of one sim pool, one state a minute), on the repository's topology with
the sim venue trading the data's pools:

* market events/s: ``--events`` pool states, one DCA strategy buying once a day (the
  market path: each event to the strategy runner, the sim venue untouched between trades);
* intents/s: ``--strategies`` DCA strategies each buying at every event, for ``--intents``
  intents in all: every intent through ingest, validate, prioritise, plan and execute
  (fused as in topology.yaml) and its fill back to its strategy; intents/s = intents
  completed / the run's seconds.

Both figures are also given per CPU second of the process (``time.process_time``): on this
shared machine the wall clock moves 2-4x with the other sessions' load, CPU time far less.

Goals (issue 17): >= 50,000 market events/s and >= 2,000 intents/s.  With ``--live N`` it
also runs ``sep bench pipeline``'s throughput with N intents (Kafka, PostgreSQL, Redis and
two workers started for it; no floor, no latency runs), so the live figure of the same run
sits next to these.  Ends with one JSON line ``{"bench": "backtest", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._common import json_line, machine
from pipeline.backtest.driver import Backtest, BacktestResult
from pipeline.backtest.generators import GeneratorConfig, generate
from pipeline.backtest.setup import backtest_topology, first_pool_states, topology_pools
from pipeline.topology import load_topology
from pipeline.topology.models import Topology

POOL = "sim-weth-usdc-5"
STEP_MS = 60_000


def _topology(events: list[Any], interval_ms: int, start_ms: int, count: int) -> Topology:
    """``count`` DCA strategies (``dca0``, ``dca1``, ...), each buying every interval."""
    dca = {
        "asset": "WETH",
        "quote": "USDC",
        "amount": "10",
        "interval_ms": interval_ms,
        "start_ms": start_ms,
        "time_window_ms": 3_600_000,
    }
    strategies = {f"dca{i}": {"plugin": "dca", "config": dca} for i in range(count)}
    return backtest_topology(load_topology(), first_pool_states(events), strategies=strategies)


async def _run(
    steps: int, interval_ms: int, strategies: int, seed: int
) -> tuple[BacktestResult, float]:
    (pool,) = [p for p in topology_pools(load_topology()) if p.pool_id == POOL]
    config = GeneratorConfig(seed=seed, steps=steps, step_ms=STEP_MS, vol=Decimal("0.001"))
    events = list(generate(config, [pool]))
    topology = _topology(events, interval_ms, config.start_ms, strategies)
    with tempfile.TemporaryDirectory(prefix="sep-bench-backtest-") as work:
        backtest = Backtest(topology, events, Path(work), seed=seed)
        result = await backtest.run()
    return result, result.seconds


def _live(count: int) -> float | None:
    from bench import pipeline as live
    from bench._services import bench_services

    args = argparse.Namespace(
        count=count, rates=[], seconds=0.0, warmup=min(1000, count), workers=2, layout="",
        floor_count=0, no_floor=True, floor_only=False,
    )  # fmt: skip
    with bench_services() as settings:
        result = asyncio.run(live._run(args, settings))
    throughput = result.get("throughput")
    return None if throughput is None else float(throughput["intents_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench backtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="market events (200000)")
    parser.add_argument("--intents", type=int, default=5_000, help="intents (default 5000)")
    parser.add_argument(
        "--strategies", type=int, default=50, help="DCA strategies buying at every event (50)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--live", type=int, default=0, metavar="N",
        help="also measure the live pipeline's throughput with N intents (default 0: not)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # The planner warns when its pending plans outlive an hour of simulated quiet.
    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)

    print(f"machine: {machine()}")
    market, market_s = asyncio.run(_run(args.events, 24 * 3_600_000, 1, args.seed))
    steps = max(1, args.intents // args.strategies)
    flow, flow_s = asyncio.run(_run(steps, STEP_MS, args.strategies, args.seed))
    completed = flow.counts.get("exec.completed", 0)
    figures: dict[str, Any] = {
        "bench": "backtest",
        "machine": machine(),
        "market_events": market.market_events,
        "market_seconds": round(market_s, 3),
        "market_events_per_s": round(market.market_events / market_s, 1),
        "market_intents": market.submissions,
        "intents": flow.submissions,
        "intents_completed": completed,
        "intents_seconds": round(flow_s, 3),
        "intents_per_s": round(completed / flow_s, 1),
        # CPU time, not the wall clock: on a shared machine the wall clock counts the other
        # sessions' work too (it moved 2-4x with the load; this moves far less).
        "intents_cpu_ms": round(flow.cpu_seconds * 1000 / max(completed, 1), 3),
        "intents_per_cpu_s": round(completed / flow.cpu_seconds, 1),
        "market_events_per_cpu_s": round(market.market_events / market.cpu_seconds, 1),
        "intents_batch": args.strategies,
        "live_intents_per_s": _live(args.live) if args.live else None,
    }
    print(f"{'':34}{'figure':>14}{'goal':>10}")
    print(
        f"{'market events/s (in memory)':34}{figures['market_events_per_s']:>14,.0f}{50_000:>10,}"
    )
    print(f"{'intents/s (in memory)':34}{figures['intents_per_s']:>14,.0f}{2_000:>10,}")
    print(
        f"{'  per CPU second (load-free)':34}{figures['intents_per_cpu_s']:>14,.0f}"
        f"   ({figures['intents_cpu_ms']} ms CPU per intent; market events "
        f"{figures['market_events_per_cpu_s']:,.0f} per CPU s)"
    )
    live = figures["live_intents_per_s"]
    print(f"{'intents/s (live pipeline, Kafka)':34}{live if live is not None else 'not run':>14}")
    print(
        f"  {market.market_events:,} market events in {market_s:.2f}s ({market.submissions} "
        f"intents); {completed:,}/{flow.submissions:,} intents completed in {flow_s:.2f}s, "
        f"{args.strategies} per market event"
    )
    print(json_line(figures))
    return 0 if flow.fatal is None and market.fatal is None else 1


if __name__ == "__main__":
    sys.exit(main())
