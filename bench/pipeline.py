"""``sep bench pipeline``: sustained intents/s through all six stages, and latency at a steady rate.

It starts its own Kafka, PostgreSQL and Redis (on free ports, in a temporary directory) unless
SEP_KAFKA / SEP_POSTGRES / SEP_REDIS name existing ones, starts the workers as separate
processes, and measures on the sim venue:

* throughput: N intents produced as fast as possible; intents/s = N / (time from the first
  send until the last intent's terminal event is in the event store);
* latency at a steady rate: for each intent, from its record timestamp (the submit) to the
  ``plan.created`` and ``exec.completed`` timestamps stamped by the stages; p50 and p99.

It prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from bench._cpu import CpuMeter
from bench._services import bench_services
from pipeline.client import INPUT_TOPIC, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.runtime.topics import ensure_topics
from pipeline.samples import random_submission
from pipeline.store.eventstore import EventStore
from pipeline.topology import load_topology


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def _bodies(count: int, run: str) -> list[dict[str, Any]]:
    topology = load_topology()
    rng = random.Random(run)
    return [random_submission(topology, rng, strategy_id=f"bench-{run}-{i % 16}",
                              client_intent_id=f"{run}-{i}", venues=["sim"])
            for i in range(count)]


async def _produce(settings: Settings, bodies: list[dict[str, Any]], rate: float | None
                   ) -> tuple[list[str], float]:
    """Send the bodies (at ``rate``/s, or flat out); return predicted ids and the start time."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, acks=1, linger_ms=2,
                                max_batch_size=512 * 1024)
    await producer.start()
    encoded = [(b["strategyId"], b["clientIntentId"], orjson.dumps(b)) for b in bodies]
    futures = []
    stamps = []
    loop = asyncio.get_running_loop()
    started = time.time()
    t0 = loop.time()
    try:
        for i, (strategy, _client_id, value) in enumerate(encoded):
            # An explicit timestamp: the intent id is derived from it, and a batched record's
            # metadata does not report its own creation time.
            stamp = time.time_ns() // 1_000_000
            stamps.append(stamp)
            futures.append(await producer.send(INPUT_TOPIC, value, key=strategy.encode(),
                                               timestamp_ms=stamp))
            if rate is not None:
                await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - loop.time()))
            elif i % 1000 == 999:
                await asyncio.sleep(0)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    ids = [predicted_intent_id(t, s, c) for t, (s, c, _) in zip(stamps, encoded, strict=True)]
    return ids, started


async def _latencies(dsn: str, ids: list[str]) -> dict[str, list[float]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT e.topic, extract(epoch FROM e.time) * 1000
                      - (s.payload->'intent'->>'createdAtMs')::bigint AS ms
               FROM events e JOIN events s
                 ON s.correlation_id = e.correlation_id AND s.topic = 'intent.submitted'
               WHERE e.correlation_id = ANY($1::text[])
                 AND e.topic IN ('plan.created', 'exec.completed')""", ids)
    finally:
        await conn.close()
    out: dict[str, list[float]] = {"plan.created": [], "exec.completed": []}
    for row in rows:
        out[row["topic"]].append(float(row["ms"]))
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _throughput(settings: Settings, pool: WorkerPool, count: int) -> dict[str, Any]:
    bodies = _bodies(count, uuid.uuid4().hex[:8])
    meter = CpuMeter(workers={proc.pid for proc in pool.procs})
    meter.start()
    ids, started = await _produce(settings, bodies, None)
    produced = time.time()
    print(f"  produced {count} in {produced - started:.2f}s; waiting for all to finish…",
          file=sys.stderr)
    outcome = await wait_until_finished(settings.postgres, ids, timeout=max(120, count / 50),
                                        pool=pool, poll=0.2)
    elapsed = time.time() - started
    cpu = meter.stop()
    completed = sum(1 for t in outcome.values() if t == "exec.completed")
    return {"intents": count, "seconds": round(elapsed, 2),
            "intents_per_s": round(count / elapsed, 1), "completed": completed,
            "cpu_ms_per_intent": {group: round(s * 1000 / count, 2) for group, s in cpu.items()},
            "cores_busy": round(sum(cpu.values()) / elapsed, 2)}


async def _steady(settings: Settings, pool: WorkerPool, rate: float, seconds: float
                  ) -> dict[str, float]:
    count = int(rate * seconds)
    ids, _ = await _produce(settings, _bodies(count, uuid.uuid4().hex[:8]), rate)
    await wait_until_finished(settings.postgres, ids, timeout=120 + seconds, pool=pool)
    lat = await _latencies(settings.postgres, ids)
    plan, done = lat["plan.created"], lat["exec.completed"]
    return {"rate": rate, "intents": count,
            "plan_p50_ms": round(_pct(plan, 0.5), 1), "plan_p99_ms": round(_pct(plan, 0.99), 1),
            "completed_p50_ms": round(_pct(done, 0.5), 1),
            "completed_p99_ms": round(_pct(done, 0.99), 1),
            "plan_mean_ms": round(statistics.fmean(plan), 1) if plan else float("nan")}


async def _run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    await ensure_topics(settings.kafka, load_topology())
    store = await EventStore.connect(settings.postgres)
    await store.close()
    layout = tuple(args.layout.split(";")) if args.layout else ()
    pool = WorkerPool(settings, count=args.workers, layout=layout, loglevel="info")
    pool.start()
    try:
        print(f"warming up ({args.workers} workers)…", file=sys.stderr)
        await _steady(settings, pool, 100, 2)
        if args.warmup:
            # Flat out, unmeasured: a fresh broker's JVM compiles its hot paths for the first
            # minute or so (measured: its JIT threads took 0.3 of a core, more than its request
            # handling), which would be charged to the intents of a cold run.
            print(f"warming up: {args.warmup} intents flat out…", file=sys.stderr)
            cold = await _throughput(settings, pool, args.warmup)
            print(f"  {cold['intents_per_s']} intents/s cold", file=sys.stderr)
        print(f"throughput: {args.count} intents flat out…", file=sys.stderr)
        throughput = await _throughput(settings, pool, args.count)
        steady = []
        for rate in args.rates:
            print(f"latency at a steady {rate:g}/s for {args.seconds:g}s…", file=sys.stderr)
            steady.append(await _steady(settings, pool, rate, args.seconds))
    finally:
        pool.stop()
    return {"throughput": throughput, "steady": steady}


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    t = result["throughput"]
    processes = f"layout {args.layout!r}" if args.layout else f"{args.workers} worker processes"
    print(f"\nsep bench pipeline — {_machine()}, {processes}, sim venue")
    print(f"sustained: {t['intents_per_s']:>8.1f} intents/s  ({t['intents']} intents through "
          f"all six stages in {t['seconds']}s; {t['completed']} completed)")
    cpu = t.get("cpu_ms_per_intent", {})
    if cpu:
        print(f"CPU per intent ({t['cores_busy']} of {os.cpu_count()} cores busy): "
              + ", ".join(f"{group} {ms} ms" for group, ms in cpu.items())
              + f"; total {sum(cpu.values()):.2f} ms")
    print(f"{'rate/s':>8} {'submit→plan p50':>16} {'p99':>8} {'submit→completed p50':>21} "
          f"{'p99':>8}   (ms)")
    for s in result["steady"]:
        print(f"{s['rate']:>8g} {s['plan_p50_ms']:>16} {s['plan_p99_ms']:>8} "
              f"{s['completed_p50_ms']:>21} {s['completed_p99_ms']:>8}")
    summary = {"bench": "pipeline", "machine": _machine(), "workers": args.workers,
               "layout": args.layout,
               "intents_per_s": t["intents_per_s"], "throughput": t, "steady": result["steady"]}
    print(json.dumps(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sep bench pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000,
                        help="intents for the throughput run (default 20000)")
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 500.0],
                        help="steady rates for the latency runs (default 200 500)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each steady run (default 10)")
    parser.add_argument("--warmup", type=int, default=1000,
                        help="intents sent flat out, unmeasured, before the throughput run, "
                        "so that a fresh broker's JIT compilation is not measured (default "
                        "1000; 0: none)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--layout", default="",
                        help="stages per worker process, processes separated by ';' "
                        "(e.g. 'ingest,validate,prioritise,plan,execute;project'); "
                        "overrides --workers")
    args = parser.parse_args(argv)

    with bench_services() as settings:
        result = asyncio.run(_run(args, settings))
    _print(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
