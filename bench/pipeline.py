"""``sep bench pipeline``: intents/s through all six stages, against the Kafka floor of the
same run, and latency at a steady rate.

It starts its own Kafka, PostgreSQL and Redis (on free ports, in a temporary directory) unless
SEP_KAFKA / SEP_POSTGRES / SEP_REDIS name existing ones, and measures on the sim venue:

* the floor (``bench/floor.py``): the same record contract moved by plain batched aiokafka
  stage processes, as many as the pipeline's, on the same broker, right after the pipeline's
  workers stopped.  This machine's speed drifts 2-3x within an hour, so the pipeline's figures
  are reported as a ratio to the floor of the same run;
* throughput: N intents produced as fast as possible; intents/s = N / (time from the first
  send until the last intent's terminal event is in the event store); CPU milliseconds per
  intent by process group (workers, Kafka, PostgreSQL, Redis, ...);
* latency at a steady rate (``--rate``, 500/s by default: issue 11's target): for each intent,
  from its record timestamp (the submit) to the ``plan.created`` and ``exec.completed``
  timestamps stamped by the stages; p50 and p99, and the same for each hop between stages
  (``HOPS``), which says where the time goes.

It prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from bench import floor
from bench._common import Steady, Throughput, cpu_figures, json_line, machine, pace, pct
from bench._cpu import CpuMeter, jit_cores, service_pids
from bench._services import bench_services
from pipeline.client import INPUT_TOPIC, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.intent_ids import submission_key
from pipeline.runtime.placement import default_layout, resolve_layout
from pipeline.runtime.topics import ensure_topics
from pipeline.samples import random_submission
from pipeline.store.eventstore import EventStore
from pipeline.topology import load_topology

WARMUP_BURSTS = 8
"""Warm-up bursts at most (``--warmup`` intents each) before measuring on a cold broker."""
QUIET_JIT_CORES = 0.05
"""The broker's JIT counts as settled when it took at most this much of a core in a burst."""


def _bodies(count: int, run: str) -> list[dict[str, Any]]:
    topology = load_topology()
    rng = random.Random(run)
    return [
        random_submission(
            topology,
            rng,
            strategy_id=f"bench-{run}-{i % 16}",
            client_intent_id=f"{run}-{i}",
            venues=["sim"],
        )
        for i in range(count)
    ]


async def _produce(
    settings: Settings, bodies: list[dict[str, Any]], rate: float | None
) -> tuple[list[str], float]:
    """Send the bodies (at ``rate``/s, or flat out); return predicted ids and the start time."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka, acks=1, linger_ms=2, max_batch_size=512 * 1024
    )
    await producer.start()
    encoded = [(b["strategyId"], b["clientIntentId"], orjson.dumps(b)) for b in bodies]
    futures = []
    stamps = []
    loop = asyncio.get_running_loop()
    started = time.time()
    t0 = loop.time()
    try:
        for i, (strategy, client_id, value) in enumerate(encoded):
            # An explicit timestamp: the intent id is derived from it, and a batched record's
            # metadata does not report its own creation time.
            stamp = time.time_ns() // 1_000_000
            stamps.append(stamp)
            futures.append(
                await producer.send(
                    INPUT_TOPIC,
                    value,
                    key=submission_key(strategy, client_id).encode(),
                    timestamp_ms=stamp,
                )
            )
            await pace(i + 1, rate, t0)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    ids = [predicted_intent_id(t, s, c) for t, (s, c, _) in zip(stamps, encoded, strict=True)]
    return ids, started


HOPS = (
    ("submit→ingest", "submitted", "intent.submitted"),
    ("ingest→validate", "intent.submitted", "intent.accepted"),
    ("validate→prioritise", "intent.accepted", "intent.prioritised"),
    ("prioritise→plan", "intent.prioritised", "plan.created"),
    ("plan→completed", "plan.created", "exec.completed"),
)
"""Where the steady run's latency goes: from one event's envelope timestamp (stamped by the
stage that made it; ``submitted`` is the submission's record timestamp) to the next's.  The
hops through Kafka are submit→ingest and ingest→validate; the fused chain's hand-overs after
that are in memory."""


async def _latencies(dsn: str, ids: list[str]) -> dict[str, list[float]]:
    """Milliseconds from each intent's submit to its ``plan.created`` and ``exec.completed``,
    and each hop of ``HOPS`` (keyed by its name)."""
    topics = sorted({t for _, a, b in HOPS for t in (a, b)} - {"submitted"})
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT e.correlation_id, e.topic, extract(epoch FROM e.time) * 1000 AS at,
                      (e.payload->'intent'->>'createdAtMs')::bigint AS submitted
               FROM events e
               WHERE e.correlation_id = ANY($1::text[]) AND e.topic = ANY($2::text[])""",
            ids,
            topics,
        )
    finally:
        await conn.close()
    times: dict[str, dict[str, float]] = {}
    for row in rows:
        seen = times.setdefault(row["correlation_id"], {})
        seen[row["topic"]] = float(row["at"])
        if row["topic"] == "intent.submitted":
            seen["submitted"] = float(row["submitted"])
    out: dict[str, list[float]] = {"plan.created": [], "exec.completed": []}
    out.update({name: [] for name, _, _ in HOPS})
    for seen in times.values():
        start = seen.get("submitted")
        for topic in ("plan.created", "exec.completed"):
            if start is not None and topic in seen:
                out[topic].append(seen[topic] - start)
        for name, a, b in HOPS:
            if a in seen and b in seen:
                out[name].append(seen[b] - seen[a])
    return out


async def _throughput(
    settings: Settings, pool: WorkerPool, count: int, services: dict[int, str]
) -> Throughput:
    bodies = _bodies(count, uuid.uuid4().hex[:8])
    meter = CpuMeter(workers={proc.pid for proc in pool.procs}, services=services)
    meter.start()
    ids, started = await _produce(settings, bodies, None)
    produced = time.time()
    print(
        f"  produced {count} in {produced - started:.2f}s; waiting for all to finish…",
        file=sys.stderr,
    )
    outcome = await wait_until_finished(
        settings.postgres, ids, timeout=max(120, count / 50), pool=pool, poll=0.2
    )
    elapsed = time.time() - started
    seconds = meter.stop()
    per_intent, total, busy = cpu_figures(seconds, count, meter.window)
    outcomes = dict(Counter(outcome.values()).most_common())
    return {
        "intents": count,
        "seconds": round(elapsed, 2),
        "intents_per_s": round(count / elapsed, 1),
        "completed": outcomes.get("exec.completed", 0),
        "cpu_ms_per_intent": per_intent,
        "cpu_ms_per_intent_total": total,
        "cores_busy": busy,
        "broker_jit_cores": round(jit_cores(seconds, meter.window), 2),
        "outcomes": outcomes,
    }


async def _steady(
    settings: Settings,
    pool: WorkerPool,
    rate: float,
    seconds: float,
    services: dict[int, str] | None = None,
) -> Steady:
    count = int(rate * seconds)
    # CPU while the intents arrive at the rate and drain: at a steady rate passes are small,
    # so an intent costs more than flat out, and how busy the cores are is what latency
    # grows with (bench/RESULTS.md, session 14).
    meter = CpuMeter(workers={proc.pid for proc in pool.procs}, services=services or {})
    meter.start()
    ids, _ = await _produce(settings, _bodies(count, uuid.uuid4().hex[:8]), rate)
    await wait_until_finished(settings.postgres, ids, timeout=120 + seconds, pool=pool, poll=0.2)
    per_intent, total, busy = cpu_figures(meter.stop(), count, meter.window)
    lat = await _latencies(settings.postgres, ids)
    plan, done = lat["plan.created"], lat["exec.completed"]
    return {
        "rate": rate,
        "intents": count,
        "plan_p50_ms": round(pct(plan, 0.5), 1),
        "plan_p99_ms": round(pct(plan, 0.99), 1),
        "completed_p50_ms": round(pct(done, 0.5), 1),
        "completed_p99_ms": round(pct(done, 0.99), 1),
        "hops_ms": {
            name: {"p50": round(pct(lat[name], 0.5), 1), "p99": round(pct(lat[name], 0.99), 1)}
            for name, _, _ in HOPS
            if lat[name]
        },
        "cpu_ms_per_intent": per_intent,
        "cpu_ms_per_intent_total": total,
        "cores_busy": busy,
    }


async def _pipeline(
    args: argparse.Namespace, settings: Settings, layout: tuple[str, ...], services: dict[int, str]
) -> tuple[Throughput, list[Steady]]:
    pool = WorkerPool(settings, count=args.workers, layout=layout, loglevel="info")
    pool.start()
    try:
        print(f"warming up ({len(layout) or args.workers} workers)…", file=sys.stderr)
        await _steady(settings, pool, 100, 2)
        if args.warmup:
            # Flat out, unmeasured: a fresh broker's JVM compiles its hot paths for its first
            # minutes of traffic (its JIT threads took up to half a core here, more than its
            # request handling), which would be charged to the pipeline, measured first, and
            # not to the floor after it.  Bursts until the JIT is quiet (bounded).
            for _burst in range(WARMUP_BURSTS):
                print(f"warming up: {args.warmup} intents flat out…", file=sys.stderr)
                cold = await _throughput(settings, pool, args.warmup, services)
                print(
                    f"  {cold['intents_per_s']} intents/s; the broker's JIT "
                    f"{cold['broker_jit_cores']} of a core",
                    file=sys.stderr,
                )
                if cold["broker_jit_cores"] <= QUIET_JIT_CORES:
                    break
            else:
                print(
                    f"  the broker's JIT still busy after {WARMUP_BURSTS} bursts", file=sys.stderr
                )
        print(f"throughput: {args.count} intents flat out…", file=sys.stderr)
        throughput = await _throughput(settings, pool, args.count, services)
        steady = []
        for rate in args.rates:
            print(f"latency at a steady {rate:g}/s for {args.seconds:g}s…", file=sys.stderr)
            steady.append(await _steady(settings, pool, rate, args.seconds, services))
    finally:
        pool.stop()
    return throughput, steady


async def _run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    await ensure_topics(settings.kafka, load_topology())
    store = await EventStore.connect(settings.postgres)
    await store.close()
    if args.layout is None:  # printed and in the JSON line as what it resolved to
        args.layout = default_layout(load_topology())
    layout = resolve_layout(load_topology(), args.layout, args.workers)
    # Found once, by the ports they listen on: a neighbour's broker on this machine is not ours.
    services = service_pids(
        {
            "kafka": settings.kafka,
            "postgres": settings.postgres,
            "redis": settings.redis,
            "chain": settings.rpc,
        }
    )
    result: dict[str, Any] = {"throughput": None, "steady": [], "floor": None, "work_floor": None}
    if not args.floor_only:
        result["throughput"], result["steady"] = await _pipeline(args, settings, layout, services)
    if not args.no_floor:
        # After the pipeline, once its workers have stopped: idle workers still poll and
        # publish market state, which would take the floor's cores; and the broker's JIT has
        # compiled its hot paths by then (see --warmup), so the floor is at its best and the
        # ratio errs against the pipeline, never for it.
        result["floor"] = await floor.measure(
            settings.kafka,
            procs=len(layout) or args.workers,
            count=args.floor_count or max(args.count, 10_000),
            warmup=args.warmup,
            rates=args.rates,
            seconds=args.seconds,
            services=services,
        )
    if args.work:
        # The same, fused as the pipeline is and burning its stages' own CPU: what the
        # simplest correct code doing this work reaches on this machine now.
        result["work_floor"] = await floor.measure(
            settings.kafka,
            procs=len(layout) or args.workers,
            count=args.count,
            warmup=args.warmup,
            rates=args.rates,
            seconds=args.seconds,
            services=services,
            work=args.work,
            fuse=True,
        )
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    t: Throughput | None = result["throughput"]
    f: floor.FloorResult | None = result["floor"]
    w: floor.FloorResult | None = result["work_floor"]
    processes = f"layout {args.layout!r}, --workers {args.workers}"
    print(f"\nsep bench pipeline — {machine()}, {processes}, sim venue")
    rows: list[tuple[str, Throughput]] = [
        (n, x)
        for n, x in (
            ("pipeline", t),
            ("floor", f and f.throughput),
            ("work floor", w and w.throughput),
        )
        if x
    ]
    groups = list(dict.fromkeys(g for _, x in rows for g in x["cpu_ms_per_intent"]))
    print(
        f"{'':>18} {'intents/s':>10} {'cores':>6}   CPU ms per intent: "
        + " ".join(f"{g:>9}" for g in (*groups, "ours"))
    )
    for name, x in rows:
        cpu = x["cpu_ms_per_intent"]
        print(
            f"{name:>18} {x['intents_per_s']:>10.1f} {x['cores_busy']:>6}   {'':19}"
            + " ".join(f"{cpu.get(g, 0.0):>9.3f}" for g in groups)
            + f" {x['cpu_ms_per_intent_total']:>9.3f}"
        )
    if t and t["completed"] < t["intents"]:
        # Throughput counts every intent that reached a terminal event; say how they ended.
        print(
            f"{'':>18} pipeline outcomes: "
            + ", ".join(f"{topic} {n}" for topic, n in t.get("outcomes", {}).items())
        )
    ratio = cpu_ratio = None
    if t and f:
        ratio = _ratio(t["intents_per_s"], f.throughput["intents_per_s"])
        cpu_ratio = _ratio(t["cpu_ms_per_intent_total"], f.throughput["cpu_ms_per_intent_total"])
        print(
            f"{'pipeline / floor':>18} {ratio:>10.3f}   (issue 11: ≥ 0.25, goal 0.5); "
            f"CPU per intent {cpu_ratio}x the floor's"
        )
    # Processes that are not this run's (another session's tests, a build) took cores from it.
    others = {
        name: round(x["cpu_ms_per_intent"].get("other", 0.0) * x["intents_per_s"] / 1000, 2)
        for name, x in rows
    }
    if any(cores > 0.2 for cores in others.values()):
        print(
            f"{'note':>18} other processes used "
            + ", ".join(f"{cores} cores during the {name} run" for name, cores in others.items())
            + ": the figures are noisy, the ratio too"
        )
    steady: list[tuple[str, Steady]] = [("pipeline", s) for s in result["steady"]]
    steady += [("floor", s) for s in (f.steady if f else [])]
    steady += [("work floor", s) for s in (w.steady if w else [])]
    if steady:
        print(
            f"{'':>18} {'rate/s':>10} {'submit→plan p50':>16} {'p99':>8} "
            f"{'submit→completed p50':>21} {'p99':>8}   (ms)"
        )
    for name, s in steady:
        print(
            f"{name:>18} {s['rate']:>10g} {s['plan_p50_ms']:>16} {s['plan_p99_ms']:>8} "
            f"{s['completed_p50_ms']:>21} {s['completed_p99_ms']:>8}"
        )
        if "cores_busy" in s:
            cpu = s["cpu_ms_per_intent"]
            print(
                f"{'':>29} CPU ms per intent {s['cpu_ms_per_intent_total']:g} (workers "
                f"{cpu.get('workers', 0.0):g}), {s['cores_busy']:g} cores busy"
            )
        hops = s.get("hops_ms")
        if hops:
            print(
                f"{'':>29} hops p50 / p99: "
                + ", ".join(f"{n} {h['p50']:g} / {h['p99']:g}" for n, h in hops.items())
            )
    print(
        json_line(
            {
                "bench": "pipeline",
                "machine": machine(),
                "workers": args.workers,
                "layout": args.layout,
                "intents_per_s": t and t["intents_per_s"],
                "floor_intents_per_s": f and f.throughput["intents_per_s"],
                "ratio": ratio,
                "cpu_ms_per_intent": t and t["cpu_ms_per_intent"],
                "cpu_ms_per_intent_total": t and t["cpu_ms_per_intent_total"],
                "floor_cpu_ms_per_intent": f and f.throughput["cpu_ms_per_intent"],
                "floor_cpu_ms_per_intent_total": f and f.throughput["cpu_ms_per_intent_total"],
                "cpu_ratio": cpu_ratio,
                "other_cores": others,
                "throughput": t,
                "steady": result["steady"],
                "floor": f and {"throughput": f.throughput, "steady": f.steady},
                "work_floor": w
                and {"work_us": args.work, "throughput": w.throughput, "steady": w.steady},
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--count", type=int, default=20_000, help="intents for the throughput run (default 20000)"
    )
    parser.add_argument(
        "--rate",
        "--rates",
        dest="rates",
        type=float,
        nargs="*",
        default=[500.0],
        metavar="RATE",
        help="steady rate(s) for the latency runs, intents/s (default 500, "
        "issue 11's target; none: no latency run)",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of each steady run (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="intents sent flat out, unmeasured, before each throughput run "
        "(pipeline and floor), so that a fresh broker's JIT compilation is not "
        f"measured; the pipeline's are repeated (at most {WARMUP_BURSTS} bursts) until "
        "the broker's JIT compiler is quiet (default 1000; 0: none)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--layout",
        default=None,
        help="as `sep up --layout`: 'split' (the default: --workers processes of the "
        "execution path, --workers of project at its lower priority), 'identical' (--workers "
        "processes running every stage), or stages per process, processes separated by ';'",
    )
    parser.add_argument(
        "--floor-count",
        type=int,
        default=0,
        help="intents for the floor's throughput run (default: --count, at "
        "least 10000: the floor is ~15x faster and needs a few seconds)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--no-floor", action="store_true", help="measure the pipeline only (no ratio)"
    )
    which.add_argument(
        "--floor-only",
        action="store_true",
        help="measure the floor only (bench/floor.py), with as many stage "
        "processes as the pipeline would have workers",
    )
    parser.add_argument(
        "--work-floor",
        default="",
        metavar="SPEC",
        help="also measure the floor of the work (bench/floor.py --work SPEC --fuse): fused "
        "as the pipeline is, each stage burning its own logic's CPU: 'stages' measures that "
        "first (sep bench stages --wire), and/or stage=microseconds pairs, e.g. "
        "'stages,project=300' (default: not run)",
    )
    args = parser.parse_args(argv)
    args.work = floor.work_of(args.work_floor)

    with bench_services() as settings:
        result = asyncio.run(_run(args, settings))
    _print(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
