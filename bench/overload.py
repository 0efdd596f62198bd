"""``sep bench overload``: urgent intents under 5x overload, with priority lanes and without.

For each mode -- ``off`` (topology.yaml without ``lanes:``: one topic, arrival order), ``on``
(its ``lanes:``: the input topic split too, each submission produced to its lane, ingest
taking passes by lane), ``budget`` (those lanes with ``pass_budget_ms``, ``--budget-ms``),
``chain`` (lanes in front of the chain only, as in session 9: no ``lanes.submit``, ingest
in arrival order), ``dedicated`` (``on`` with the fast lane in a worker of its own,
``lanes.dedicated: [fast]``, the other processes at a lower priority:
``pipeline.runtime.lane_workers``) -- on a fresh Kafka, PostgreSQL and Redis (so no run
inherits another's backlog), with ingest, the chain and project in processes of their own
(``--layout``):

1. the sustainable rate, measured once, in the first mode's stack: ``--count`` routine intents
   flat out, intents/s to their terminal event (as ``sep bench pipeline``'s throughput);
2. ``--factor`` (5) times that rate offered for ``--seconds`` (60), ``--urgent`` (10 %) of the
   intents urgent (a 5 s window, AGGRESSIVE: the scorer puts them in the fast lane), the rest
   routine (a 10-60 minute window, ADAPTIVE or PASSIVE);
3. ``--drain`` seconds more, then what happened, read from the topics (the event store lags
   under overload): submit -> ``plan.created`` p50/p99 for urgent and routine, how many of
   each were planned (routine planned: none starved), how many expired waiting, the lane
   each intent was reported in.

Plus the cost of scoring, in this process, per intent: the model's call over a batch of 500,
and with the features built (what ingest and prioritise pay); and a producer's choice of
the input lane (``SubmitLanes``), in a batch and alone.
It prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import timeit
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench._common import json_line, machine, pace, pct
from bench._services import bench_services
from pipeline.client import predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.intent_ids import submission_key
from pipeline.models.intent import Intent, IntentSubmission
from pipeline.pricing import notional
from pipeline.priority.features import Signals, feature_row, matrix
from pipeline.priority.scoring import IntentScorer
from pipeline.priority.submit_lanes import SubmitLanes
from pipeline.runtime.lane_workers import ROUTINE_NICENESS, dedicated_lanes
from pipeline.runtime.placement import layout_of
from pipeline.runtime.topics import ensure_topics
from pipeline.samples import random_submission
from pipeline.store.eventstore import EventStore
from pipeline.supervisor import RestartPolicy, Supervisor
from pipeline.topology import load_topology
from pipeline.topology.loader import parse_topology
from pipeline.topology.models import Topology

REPO_TOPOLOGY = Path(__file__).resolve().parent.parent / "topology.yaml"
URGENT_WINDOW_MS = 5_000
DEFAULT_LAYOUT = "ingest;validate,prioritise,plan,execute;project"


@dataclass
class Offered:
    ids: list[str] = field(default_factory=list)
    stamps: dict[str, int] = field(default_factory=dict)
    urgent: set[str] = field(default_factory=set)
    seconds: float = 0.0


@cache
def repo_topology() -> Topology:
    return load_topology(REPO_TOPOLOGY)


def body(rng: random.Random, run: str, i: int, urgent: bool) -> dict[str, Any]:
    data = random_submission(
        repo_topology(),
        rng,
        strategy_id=f"ovl-{run}-{i % 16}",
        client_intent_id=f"{run}-{i}",
        venues=["sim"],
    )
    constraints = data["constraints"]
    if urgent:
        constraints.update(timeWindowMs=URGENT_WINDOW_MS, executionStyle="AGGRESSIVE")
    else:
        constraints.update(
            timeWindowMs=rng.choice((600_000, 1_800_000, 3_600_000)),
            executionStyle=rng.choice(("ADAPTIVE", "PASSIVE")),
        )
    return data


def topology_file(directory: Path, mode: str, budget_ms: int) -> Path:
    """topology.yaml for ``mode``: ``off`` without its ``lanes:`` section, ``on`` with them
    (enabled, whatever the file says), ``budget`` with ``lanes.pass_budget_ms`` set to
    ``budget_ms`` too, ``chain`` without ``lanes.submit`` and with the chain alone
    scheduled."""
    raw = yaml.safe_load(REPO_TOPOLOGY.read_text())
    if mode == "off":
        raw.pop("lanes", None)
    elif "lanes" not in raw:
        raise SystemExit("topology.yaml declares no lanes: nothing to compare")
    else:
        raw["lanes"]["enabled"] = True
        if mode == "budget":
            raw["lanes"]["pass_budget_ms"] = budget_ms
        if mode == "dedicated":
            raw["lanes"]["dedicated"] = ["fast"]
        if mode == "chain":
            raw["lanes"].pop("submit", None)
            raw["lanes"].pop("unlabelled", None)
            raw["lanes"]["scheduled"] = [
                s for s in raw["lanes"].get("scheduled", ["validate"]) if s != "ingest"
            ]
    path = directory / f"topology-lanes-{mode}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    parse_topology(path.read_text(), str(path))  # refuse a broken file here, not in a worker
    return path


async def produce(
    settings: Settings,
    count: int,
    rate: float | None,
    urgent_share: float,
    run: str,
    lanes: SubmitLanes,
) -> Offered:
    """``count`` intents at ``rate``/s (None: flat out), every ``1/urgent_share``-th urgent,
    each to the input topic ``lanes`` chooses (chosen before the clock starts, in batches
    of 500, as a strategy runner would: the load generator's own speed is not measured)."""
    rng = random.Random(run)
    every = round(1 / urgent_share) if urgent_share > 0 else 0
    plan = [(i, bool(every) and i % every == every - 1) for i in range(count)]
    dicts = [body(rng, run, i, u) for i, u in plan]
    topics: list[str] = []
    for start in range(0, count, 500):
        chunk = [IntentSubmission.model_validate(d) for d in dicts[start : start + 500]]
        topics += lanes.topics_of(chunk)
    bodies = [
        (orjson.dumps(d), u, f"ovl-{run}-{i % 16}", f"{run}-{i}", topic)
        for (i, u), d, topic in zip(plan, dicts, topics, strict=True)
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka, acks=1, linger_ms=2, max_batch_size=512 * 1024
    )
    await producer.start()
    offered = Offered()
    loop = asyncio.get_running_loop()
    futures = []
    t0 = loop.time()
    try:
        for i, (value, urgent, strategy, client, topic) in enumerate(bodies):
            stamp = time.time_ns() // 1_000_000
            futures.append(
                await producer.send(
                    topic, value, key=submission_key(strategy, client).encode(), timestamp_ms=stamp
                )
            )
            intent_id = predicted_intent_id(stamp, strategy, client)
            offered.ids.append(intent_id)
            offered.stamps[intent_id] = stamp
            if urgent:
                offered.urgent.add(intent_id)
            await pace(i + 1, rate, t0)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    offered.seconds = loop.time() - t0
    return offered


async def read_outcomes(settings: Settings, topics: dict[str, int]) -> list[dict[str, Any]]:
    """Every event on ``topics`` (name -> partitions) up to their end offsets now (envelopes
    as dicts)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic, n in topics.items() for p in range(n)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        left = {tp for tp, end in ends.items() if end > 0}
        events: list[dict[str, Any]] = []
        while left:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < ends[tp] and m.value:
                        events.append(orjson.loads(m.value))
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return events


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def figures(offered: Offered, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency submit -> plan.created and outcomes, urgent and routine apart; and where the
    planned intents waited, p50 of each segment: submit -> ingest's ``intent.submitted``
    (the wait for and in ingest), -> validate's ``risk.approved`` (the hop to the chain and
    the wait for its pass), -> ``plan.created`` (the chain's pass up to the plan)."""
    planned: dict[str, float] = {}
    expired: set[str] = set()
    lanes: dict[str, str] = {}
    stamps: dict[str, dict[str, float]] = {}
    for event in events:
        cid, topic = event.get("correlationId"), event.get("topic")
        if cid not in offered.stamps:
            continue
        if topic in ("intent.submitted", "risk.approved", "plan.created"):
            stamps.setdefault(cid, {})[topic] = _ms(event["timestamp"])
        if topic == "plan.created":
            planned[cid] = _ms(event["timestamp"]) - offered.stamps[cid]
        elif topic == "intent.expired":
            expired.add(cid)
        elif topic == "intent.prioritised":
            lanes[cid] = event["payload"]["lane"]
    out: dict[str, Any] = {}
    for name, ids in (
        ("urgent", [i for i in offered.ids if i in offered.urgent]),
        ("routine", [i for i in offered.ids if i not in offered.urgent]),
    ):
        lat = [planned[i] for i in ids if i in planned]
        out[name] = {
            "offered": len(ids),
            "planned": len(lat),
            "expired": sum(1 for i in ids if i in expired),
            "plan_p50_ms": round(pct(lat, 0.5), 1),
            "plan_p99_ms": round(pct(lat, 0.99), 1),
            "plan_max_ms": round(max(lat), 1) if lat else float("nan"),
            "lanes": dict(Counter(lanes[i] for i in ids if i in lanes).most_common()),
            "segments_p50_ms": segments(
                [(offered.stamps[i], stamps[i]) for i in ids if i in planned]
            ),
        }
    return out


SEGMENTS = (
    ("ingest", None, "intent.submitted"),
    ("to_chain", "intent.submitted", "risk.approved"),
    ("chain", "risk.approved", "plan.created"),
)
"""(name, from event, to event) of submit -> plan.created (None: the producer's stamp)."""


def segments(planned: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """p50 of each segment of submit -> plan.created over (submit stamp, event stamps)."""
    out: dict[str, float] = {}
    for name, start, end in SEGMENTS:
        spans = [
            at[end] - (stamp if start is None else at[start])
            for stamp, at in planned
            if end in at and (start is None or start in at)
        ]
        out[name] = round(pct(spans, 0.5), 1)
    return out


def scoring_cost(batch: int = 500) -> dict[str, Any]:
    """Scoring a batch of ``batch`` intents in one call, and one intent alone, µs per intent:
    the model's call alone, and with the features built from the intents (what ingest and
    prioritise pay)."""
    topology = load_topology(REPO_TOPOLOGY)
    scorer = IntentScorer(topology)
    rng = random.Random(1)
    now = 1_700_000_000_000
    intents = []
    for i in range(batch):
        sub = IntentSubmission.model_validate(body(rng, "cost", i, i % 10 == 9))
        parts = {k: v for k, v in sub.__dict__.items() if v is not None}
        intents.append(Intent(id=f"intent-{i}", created_at_ms=now, **parts))
    rounds = 50

    def best(call: Callable[[], object]) -> float:
        return min(timeit.repeat(call, number=rounds, repeat=3)) / rounds

    out: dict[str, Any] = {"scorer": scorer.name, "batch": batch}
    model = scorer.model
    if model is not None:
        x = matrix(
            [
                feature_row(i, notional(i, topology), now, Signals(queue_depth=batch))
                for i in intents
            ]
        )
        out["model_us_per_intent"] = round(best(lambda: model.score(x)) / batch * 1e6, 3)
        out["model_single_us"] = round(best(lambda: model.score(x[:1])) * 1e6, 1)
    out["batched_us_per_intent"] = round(best(lambda: scorer.score(intents, now)) / batch * 1e6, 2)
    out["single_us"] = round(best(lambda: scorer.score(intents[:1], now)) * 1e6, 1)
    # A producer's choice of the input lane: the same scorer, from the submission alone.
    lanes = SubmitLanes(repo_topology_lanes_on())
    subs = [
        IntentSubmission.model_validate(body(rng, "cost", i, i % 10 == 9)) for i in range(batch)
    ]
    out["submit_lane_batched_us"] = round(best(lambda: lanes.topics_of(subs)) / batch * 1e6, 2)
    out["submit_lane_single_us"] = round(best(lambda: lanes.topic_of(subs[0])) * 1e6, 1)
    return out


def repo_topology_lanes_on() -> Topology:
    raw = yaml.safe_load(REPO_TOPOLOGY.read_text())
    raw["lanes"]["enabled"] = True
    return parse_topology(yaml.safe_dump(raw, sort_keys=False))


async def sustainable(
    settings: Settings, pool: WorkerPool, count: int, lanes: SubmitLanes
) -> float:
    """Routine intents flat out: intents/s from the first send to the last terminal event."""
    started = time.time()
    offered = await produce(settings, count, None, 0.0, uuid.uuid4().hex[:8], lanes)
    await wait_until_finished(
        settings.postgres, offered.ids, timeout=max(120, count / 20), pool=pool
    )
    return count / (time.time() - started)


async def run_mode(
    args: argparse.Namespace, settings: Settings, topology: Path, rate: float | None
) -> tuple[float, dict[str, Any]]:
    parsed = load_topology(topology)
    lanes = SubmitLanes(parsed)
    await ensure_topics(settings.kafka, parsed)
    store = await EventStore.connect(settings.postgres)
    await store.close()
    layout = layout_of(load_topology(), args.layout, args.workers) if args.layout else ()
    env = {"SEP_TOPOLOGY": str(topology)}
    if args.logs:
        env["SEP_TRACE_BATCHES"] = "1"  # every pass's size and time, in the kept logs
    pool = WorkerPool(
        settings,
        count=args.workers,
        layout=layout,
        loglevel="info" if args.logs else "warning",
        extra_env=env,
        lanes=dedicated_lanes(parsed),  # the dedicated mode's fast-lane worker
        niceness=args.niceness,
    )
    pool.start()
    try:
        print("  warming up…", file=sys.stderr)
        warm = await produce(settings, 200, 100, args.urgent, uuid.uuid4().hex[:8], lanes)
        await wait_until_finished(settings.postgres, warm.ids, timeout=120, pool=pool)
        if rate is None:
            print(f"  sustainable rate: {args.count} intents flat out…", file=sys.stderr)
            rate = await sustainable(settings, pool, args.count, lanes)
            print(f"  sustainable: {rate:.1f} intents/s", file=sys.stderr)
        offer = rate * args.factor
        count = int(offer * args.seconds)
        print(
            f"  offering {offer:.0f}/s for {args.seconds:g}s ({count} intents, "
            f"{args.urgent:.0%} urgent), then {args.drain:g}s more…",
            file=sys.stderr,
        )
        # Under overload as under `sep up`: a worker that stops is restarted (counted).
        supervisor = Supervisor(
            pool, RestartPolicy(), say=lambda line: print(line, file=sys.stderr)
        )
        stop = asyncio.Event()
        watching = asyncio.create_task(supervisor.run(stop))
        try:
            offered = await produce(
                settings, count, offer, args.urgent, uuid.uuid4().hex[:8], lanes
            )
            await asyncio.sleep(args.drain)
        finally:
            stop.set()
            await watching
        # Ingest's and validate's events too: where an intent waited (``figures``' segments).
        ingested = [t for t in parsed.stage("ingest").outputs if t != "sep.deadletter"]
        topics = {
            topic: parsed.topic(topic).partitions
            for topic in (
                *ingested,
                parsed.stage("validate").events_topic,
                parsed.stage("prioritise").events_topic,
                parsed.stage("plan").events_topic,
                parsed.stage("execute").events_topic,
            )
        }
        events = await read_outcomes(settings, topics)
    finally:
        pool.stop()
        if args.logs:
            kept = Path(args.logs) / topology.stem
            shutil.copytree(pool.log_dir, kept, dirs_exist_ok=True)
    result = figures(offered, events)
    result["offered_per_s"] = round(count / offered.seconds, 1) if offered.seconds else None
    result["worker_restarts"] = supervisor.restarts
    return rate, result


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"sustainable_per_s": None, "modes": {}}
    rate: float | None = args.rate
    with tempfile.TemporaryDirectory(prefix="sep-overload-") as tmp:
        for mode in args.modes:
            path = topology_file(Path(tmp), mode, args.budget_ms)
            print(f"lanes {mode}:", file=sys.stderr)
            with bench_services() as settings:
                rate, out["modes"][mode] = await run_mode(args, settings, path, rate)
            out["sustainable_per_s"] = round(rate, 1)
    out["scoring"] = scoring_cost()
    return out


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    layout = f"layout {args.layout!r}" if args.layout else f"{args.workers} workers"
    print(f"\nsep bench overload — {machine()}, {layout}, sim venue")
    rate = result["sustainable_per_s"]
    print(
        f"sustainable {rate}/s (this run); offered {args.factor:g}x for {args.seconds:g}s "
        f"+ {args.drain:g}s drain, {args.urgent:.0%} urgent (window {URGENT_WINDOW_MS} ms)"
    )
    print(
        f"{'lanes':>6} {'class':>8} {'offered':>8} {'planned':>8} {'expired':>8} "
        f"{'plan p50':>9} {'p99':>9} {'max':>9}  (ms, submit -> plan.created)   reported lanes"
    )
    for mode, figs in result["modes"].items():
        for name in ("urgent", "routine"):
            f = figs[name]
            print(
                f"{mode:>6} {name:>8} {f['offered']:>8} {f['planned']:>8} {f['expired']:>8} "
                f"{f['plan_p50_ms']:>9} {f['plan_p99_ms']:>9} {f['plan_max_ms']:>9}   "
                + ", ".join(f"{lane} {n}" for lane, n in f["lanes"].items())
            )
            seg = f["segments_p50_ms"]
            if name == "routine" and figs.get("worker_restarts"):
                print(
                    f"{'':>6} {'':>8} workers restarted during the run: {figs['worker_restarts']}"
                )
            print(
                f"{'':>6} {'':>8} p50 of: submit -> ingested {seg['ingest']} ms, -> validated "
                f"{seg['to_chain']} ms, -> planned {seg['chain']} ms"
            )
    s = result["scoring"]
    if "model_us_per_intent" in s:
        print(
            f"scoring, the model's call: {s['model_us_per_intent']} µs per intent in a batch "
            f"of {s['batch']}; {s['model_single_us']} µs for one alone"
        )
    print(
        f"scoring, features + model ({s['scorer']}): {s['batched_us_per_intent']} µs per "
        f"intent in a batch of {s['batch']}; {s['single_us']} µs for one alone"
    )
    print(
        f"a producer's lane choice: {s['submit_lane_batched_us']} µs per submission in a "
        f"batch of {s['batch']}; {s['submit_lane_single_us']} µs for one alone"
    )
    for mode in ("on", "budget", "chain", "dedicated"):
        goal = result["modes"].get(mode, {}).get("urgent", {}).get("plan_p99_ms")
        if goal is not None:
            met = "met" if goal == goal and goal <= 50 else "not met"
            print(f"goal: urgent p99 ≤ 50 ms, lanes {mode}: {met}")
    print(
        json_line(
            {
                "bench": "overload",
                "machine": machine(),
                "layout": args.layout,
                "factor": args.factor,
                "seconds": args.seconds,
                "drain_s": args.drain,
                "urgent_share": args.urgent,
                **result,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench overload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="overload length (60)")
    parser.add_argument("--factor", type=float, default=5.0, help="x the sustainable rate (5)")
    parser.add_argument("--urgent", type=float, default=0.1, help="share of urgent intents (0.1)")
    parser.add_argument(
        "--drain", type=float, default=10.0, help="seconds after the overload before reading (10)"
    )
    parser.add_argument(
        "--count", type=int, default=3000, help="intents flat out for the sustainable rate (3000)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="the sustainable rate, if known (skips step 1)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["off", "on", "budget"],
        choices=["off", "on", "budget", "chain", "dedicated"],
        help="off: no lanes:; on: topology.yaml's lanes:; budget: those with "
        "pass_budget_ms = --budget-ms; chain: lanes in front of the chain only (no "
        "lanes.submit); dedicated: those lanes with the fast lane in a worker of its own "
        "(lanes.dedicated: [fast]; the layout's processes at a lower priority) (default: "
        "off, on, budget; the sustainable rate is measured in the first)",
    )
    parser.add_argument(
        "--layout",
        default=DEFAULT_LAYOUT,
        help=f"stages per worker process, ';' between processes (default {DEFAULT_LAYOUT!r}: "
        "the lane-scheduled chain alone in its process, so no ingest or project pass on its "
        "event loop delays an urgent record)",
    )
    parser.add_argument("--workers", type=int, default=2, help="with --layout '': N workers")
    parser.add_argument(
        "--logs", default="", help="keep the workers' logs here, with every pass traced"
    )
    parser.add_argument(
        "--budget-ms", type=int, default=20, help="pass_budget_ms of the budget mode (20)"
    )
    parser.add_argument(
        "--niceness",
        type=int,
        default=ROUTINE_NICENESS,
        help="dedicated mode: how much lower the layout's processes' priority is than the "
        f"lane worker's ({ROUTINE_NICENESS})",
    )
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    _print(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
