"""``sep bench stages``: CPU per intent of each stage's own logic, in memory (no broker).

Runs the topology's stages ingest → execute (fused as ``topology.yaml`` says, sim venue only)
over in-memory topics (``pipeline.runtime.delivery.memory``): ``--count`` random submissions
fed in batches of ``--batch``, each batch run until idle.  Every stage's ``process`` is timed
with this process' CPU clock, so a figure is that stage's logic plus what it hands the sink
(in memory: an append); the rest (the runner, the ledger, the memory topics) is ``runtime``.
Project is not included: it needs PostgreSQL and Redis (``sep bench readmodel`` measures its
Redis side; ``sep bench pipeline`` measures it all on real services).

``--wire``: records reach each group as bytes only, as a Kafka worker's do.  By default a
record carries the event its stage built to every group reading it, so ingest's intents reach
validate (the fused chain's first stage) decoded, and execute's reports reach plan decoded:
in a worker both come from the broker and are decoded there.  Within the chain, hand-overs
are in memory either way (``topology.yaml`` ``fusion:``).

What the figures are for: comparing two versions of a stage on a shared machine.  Run this
against each, alternately, a few times: CPU time compares across load far better than wall
time (it still moves a few per cent with the machine's state, so look at medians).  The
garbage collector is tuned as in a worker (``gc_tuning``).

Prints a table and, last, one JSON line ``{"bench": "stages", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench._common import json_line, machine
from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.runtime import gc_tuning
from pipeline.runtime.delivery.memory import MemoryRuntime, build_memory_runtime
from pipeline.samples import random_submission
from pipeline.stages.base import Emit, Record
from pipeline.topology import load_topology
from pipeline.topology.models import PluginUse, Topology

STAGES = ("ingest", "validate", "prioritise", "plan", "execute")
INPUT = "sep.intents.submitted"


def sim_only(topology: Topology) -> Topology:
    """The topology with every venue but the sim venue disabled (no chain to reach)."""
    venues = {
        name: use if name == "sim" else PluginUse(enabled=False)
        for name, use in topology.plugins.venues.items()
    }
    return topology.model_copy(
        update={"plugins": topology.plugins.model_copy(update={"venues": venues})}
    )


def _time_stages(runtime: MemoryRuntime, spent: dict[str, float]) -> None:
    """Wrap each stage's ``process`` to add its CPU time to ``spent[stage]``."""
    for runner in runtime.runners:
        for node in runner.group.nodes:
            name, process = node.spec.name, node.processor.process

            async def timed(
                records: Sequence[Record], emit: Emit, name: str = name, process: Any = process
            ) -> None:
                started = time.process_time()
                try:
                    await process(records, emit)
                finally:
                    spent[name] = spent.get(name, 0.0) + time.process_time() - started

            node.processor.process = timed  # type: ignore[method-assign]


async def measure(
    count: int, batch: int, seed: int, warmup: int, wire: bool = False
) -> dict[str, Any]:
    topology = sim_only(load_topology())
    with tempfile.TemporaryDirectory() as data_dir:
        runtime, lifecycle = build_memory_runtime(
            topology, Settings(data_dir=Path(data_dir)), STAGES, keep_changelogs=False
        )
        runtime.topics.wire = wire
        gc_tuning.configure(gc_tuning.DEFAULT_THRESHOLD)
        await lifecycle.ensure_started()
        try:
            rng = random.Random(seed)
            bodies = [
                orjson.dumps(
                    random_submission(
                        topology,
                        rng,
                        strategy_id=f"bench-{i % 5}",
                        client_intent_id=f"c{i}",
                        venues=["sim"],
                    )
                )
                for i in range(warmup + count)
            ]
            for body in bodies[:warmup]:
                runtime.feed(INPUT, b"bench", body)
            await runtime.run_until_idle()
            spent: dict[str, float] = {}
            _time_stages(runtime, spent)
            started = time.process_time()
            for i in range(warmup, warmup + count, batch):
                for body in bodies[i : i + batch]:
                    runtime.feed(INPUT, b"bench", body)
                await runtime.run_until_idle()
            total = time.process_time() - started
            # Every event on sep.executions, warm-up included (a check that intents completed).
            outcomes = Counter(
                decode_event(r.value).topic
                for r in runtime.topics.log.get("sep.executions", [])
                if r.value is not None
            )
        finally:
            await lifecycle.stop()
    per_stage = {name: round(spent.get(name, 0.0) / count * 1000, 4) for name in STAGES}
    per_stage["runtime"] = round(total / count * 1000 - sum(per_stage.values()), 4)
    return {
        "total_ms": round(total / count * 1000, 4),
        "stages_ms": per_stage,
        "outcomes": dict(outcomes.most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench stages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=3000, help="intents measured (3000)")
    parser.add_argument("--batch", type=int, default=200, help="submissions per pass (200)")
    parser.add_argument("--warmup", type=int, default=300, help="intents run first (300)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are printed (3)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--wire",
        action="store_true",
        help="records reach each group as bytes only, as in a Kafka worker (not decoded events)",
    )
    args = parser.parse_args(argv)

    runs = []
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}: {args.count} intents…", flush=True)
        runs.append(asyncio.run(measure(args.count, args.batch, args.seed, args.warmup, args.wire)))
    names = [*STAGES, "runtime"]
    medians = {n: round(statistics.median(r["stages_ms"][n] for r in runs), 4) for n in names}
    total = round(statistics.median(r["total_ms"] for r in runs), 4)
    print(f"sep bench stages — {machine()}")
    between = "as bytes (--wire)" if args.wire else "as events"
    print(
        f"{args.count} intents in batches of {args.batch}, median of {args.runs} runs; "
        f"records between groups {between}"
    )
    print(f"{'stage':<12} {'CPU ms/intent':>14}   runs")
    for n in names:
        each = " ".join(f"{r['stages_ms'][n]:.3f}" for r in runs)
        print(f"{n:<12} {medians[n]:>14.3f}   {each}")
    print(f"{'all':<12} {total:>14.3f}   " + " ".join(f"{r['total_ms']:.3f}" for r in runs))
    print(f"events on sep.executions (last run, warm-up included): {runs[-1]['outcomes']}")
    print(
        json_line(
            {
                "bench": "stages",
                "machine": machine(),
                "intents": args.count,
                "batch": args.batch,
                "wire": args.wire,
                "cpu_ms_per_intent": total,
                "stages_ms": medians,
                "runs": runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
