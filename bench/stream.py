"""``sep bench stream``: event -> WebSocket client latency at steady rates, and replay speed.

Starts its own Kafka, PostgreSQL and Redis (free ports, temporary directory), two worker
processes and the UI app in its own process (uvicorn), then for each rate:

* produces intents at that steady rate for ``--seconds``;
* a WebSocket client subscribed to every change records, per change frame, receive time minus
  the event's own timestamp (stamped by the stage that emitted it): Kafka hop to project,
  PostgreSQL, Redis, the change stream, the broadcaster and the socket — what a UI user waits;
* reports the offered rate, the rate the pipeline actually completed, and p50/p99 latency.

Then it rebuilds every read model from the event store (``sep replay``'s rebuild) and reports
events/s.  It prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from bench import _stream_trace
from bench._common import json_line, machine, pct
from bench._cpu import CpuMeter, service_pids
from bench._services import bench_services
from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, service_env, wait_until_finished
from pipeline.runtime.placement import default_layout, resolve_layout
from pipeline.runtime.topics import ensure_topics
from pipeline.samples import random_submission
from pipeline.store import replay
from pipeline.store.eventstore import EventStore
from pipeline.topology import load_topology


class Listener:
    """A WebSocket client of ``/stream``: latency of every change frame, by intent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies_ms: dict[str, list[float]] = {}
        self.frames: list[tuple[str, str, str, int, float]] = []
        """(intent id, event id, change id, event ms, received ms) of every change frame."""
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 30)

    async def _run(self) -> None:
        async with connect(self.url, max_size=None) as ws:
            await ws.send(orjson.dumps({"action": "subscribe", "topics": ["*"]}).decode())
            async for message in ws:
                now_ms = time.time() * 1000
                frame = orjson.loads(message)
                if frame["type"] == "caught_up":
                    self._ready.set()
                elif frame["type"] == "change":
                    self.latencies_ms.setdefault(frame["intentId"], []).append(now_ms - frame["ms"])
                    self.frames.append(
                        (frame["intentId"], frame["eventId"], frame["id"], frame["ms"], now_ms)
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def _steady(
    settings: Settings,
    pool: WorkerPool,
    listener: Listener,
    rate: float,
    seconds: float,
    drain_s: float,
    segments: bool = False,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    topology = load_topology()
    rng = random.Random(int(rate))
    run = uuid.uuid4().hex[:6]
    count = int(rate * seconds)
    ids: list[str] = []
    if meter is not None:
        meter.start()
    async with IntentProducer(settings.kafka) as producer:
        started = time.monotonic()
        for i in range(count):
            body = random_submission(
                topology,
                rng,
                strategy_id=f"bench-{run}-{i % 16}",
                client_intent_id=f"{run}-{i}",
                venues=["sim"],
            )
            stamp, _ = await producer.send(body)
            ids.append(predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"]))
            if (pause := started + (i + 1) / rate - time.monotonic()) > 0:
                await asyncio.sleep(pause)
        await producer.flush()
        sent_s = time.monotonic() - started
    try:
        await wait_until_finished(settings.postgres, ids, timeout=drain_s, pool=pool)
        finished = len(ids)
    except TimeoutError:
        finished = -1
    done_s = time.monotonic() - started
    await asyncio.sleep(1.0)  # the last changes reach the socket
    cpu = meter.stop() if meter is not None else {}
    latencies = [ms for i in ids for ms in listener.latencies_ms.get(i, [])]
    breakdown: dict[str, Any] = {}
    if segments:
        by_event, by_change = await _stream_trace.collect(settings.redis, settings.redis_prefix)
        breakdown["segments"] = _stream_trace.segments(
            listener.frames, set(ids), by_event, by_change, pct
        )
    return {
        "rate_offered": rate,
        "rate_sent": round(count / sent_s, 1),
        "intents": count,
        "finished": finished >= 0,
        "rate_completed": round(count / done_s, 1) if finished >= 0 else None,
        "frames": len(latencies),
        "ws_latency_p50_ms": round(pct(latencies, 0.5), 1),
        "ws_latency_p99_ms": round(pct(latencies, 0.99), 1),
        # CPU per change frame, by process group: what the path costs, whatever the load
        # of a shared machine does to its latency.
        "cpu_us_per_frame": {
            group: round(seconds * 1e6 / max(1, len(latencies)), 1)
            for group, seconds in cpu.items()
            if group != "other"
        },
        **breakdown,
    }


async def _run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    await ensure_topics(settings.kafka, load_topology())
    store = await EventStore.connect(settings.postgres)
    await store.close()
    if args.layout is None:  # printed and in the JSON line as what it resolved to
        args.layout = default_layout(load_topology())
    layout = resolve_layout(load_topology(), args.layout, args.workers)
    pool = WorkerPool(settings, count=args.workers, layout=layout, loglevel="warning")
    factory = "ui.app:create_app"
    if args.segments:  # the same processes, with bench._stream_trace's stamps
        pool.command = (sys.executable, "-m", "bench._stream_trace", "worker")
        factory = "bench._stream_trace:create_app"
    port = args.port
    # The UI in a process of its own, as deployed (it must not share this one's CPU).
    ui = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once; nothing blocks
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=service_env(settings),
        start_new_session=True,
    )
    pool.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    if (await client.get("/health")).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        services = service_pids(
            {"kafka": settings.kafka, "postgres": settings.postgres, "redis": settings.redis}
        )
        meter = CpuMeter(
            workers={proc.pid for proc in pool.procs}, services={**services, ui.pid: "ui"}
        )
        listener = Listener(f"ws://127.0.0.1:{port}/stream")
        await listener.start()
        # Warm-up: the workers join their groups; the first intents pay for it.
        await _steady(settings, pool, listener, 20, 1, drain_s=120)
        if args.warmup:
            # Then a burst, unmeasured: a fresh broker's JVM compiles its hot paths in its
            # first minute or so, taking CPU the measured runs would otherwise share (as
            # ``sep bench pipeline --warmup`` does).
            print(f"warming up: {args.warmup} intents at 1,000/s…", file=sys.stderr)
            await _steady(settings, pool, listener, 1000, args.warmup / 1000, args.drain)
        runs = [
            await _steady(
                settings, pool, listener, rate, args.seconds, args.drain, args.segments, meter
            )
            for rate in args.rates
        ]
        await listener.stop()
    finally:
        pool.stop()
        ui.terminate()
        ui.wait(10)
    rebuilt = await replay.rebuild(settings, load_topology())
    await replay.drop(settings, rebuilt)
    return {
        "layout": args.layout,
        "runs": runs,
        "replay_events": rebuilt.events,
        "replay_seconds": round(rebuilt.seconds, 2),
        "replay_events_per_s": round(rebuilt.events_per_second),
    }


def _print(result: dict[str, Any]) -> None:
    print(f"\nsep bench stream — {machine()}, {result['layout']}")
    print("event -> WebSocket client latency (change frames of the run's intents)")
    print(
        f"{'offered/s':>10} {'sent/s':>8} {'completed/s':>12} {'frames':>8} "
        f"{'p50 ms':>9} {'p99 ms':>9}"
    )
    for r in result["runs"]:
        completed = r["rate_completed"] if r["finished"] else "not drained"
        print(
            f"{r['rate_offered']:>10.0f} {r['rate_sent']:>8} {completed!s:>12} "
            f"{r['frames']:>8} {r['ws_latency_p50_ms']:>9} {r['ws_latency_p99_ms']:>9}"
        )
    for r in result["runs"]:
        cpu = ", ".join(f"{g} {us:.0f}" for g, us in r["cpu_us_per_frame"].items())
        print(f"CPU us per frame at {r['rate_offered']:.0f}/s: {cpu}")
    for r in result["runs"]:
        if "segments" in r:
            print(f"\nsegments at {r['rate_offered']:.0f}/s (ms)")
            print(f"{'':<36} {'p50':>8} {'p99':>8} {'mean':>8} {'n':>7}")
            for name, s in r["segments"].items():
                print(f"{name:<36} {s['p50']:>8} {s['p99']:>8} {s['mean']:>8} {s['n']:>7}")
    print(
        f"replay: {result['replay_events']:,} events in {result['replay_seconds']} s = "
        f"{result['replay_events_per_s']:,} events/s"
    )
    print(json_line({"bench": "stream", "machine": machine(), **result}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[200.0, 1000.0],
        help="steady submit rates, intents/s (default 200 1000)",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each steady run (default 5)"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=180.0,
        help="seconds to wait for a run's intents to finish (default 180)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="intents sent at 1,000/s, unmeasured, before the runs, so that a fresh "
        "broker's JIT compilation is not measured (default 1000; 0: none)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--layout",
        default=None,
        help="as `sep up --layout`: 'split' (the default), 'identical' (--workers processes "
        "running every stage), or stages per process, ';' between processes",
    )
    parser.add_argument("--port", type=int, default=8791, help="UI port (default 8791)")
    parser.add_argument(
        "--segments",
        action="store_true",
        help="also break the latency into segments (bench._stream_trace stamps the workers "
        "and the UI)",
    )
    args = parser.parse_args(argv)

    with bench_services() as settings:
        result = asyncio.run(_run(args, settings))
    _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
