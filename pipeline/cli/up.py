"""``sep up``: the whole platform on one machine, on embedded defaults.

Starts Kafka, PostgreSQL and Redis (or uses the ones given by URL), creates the topics,
migrates the event store, starts the workers and the status page, streams a few demo
intents, and keeps everything running until Ctrl-C, then stops it all in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import TYPE_CHECKING

from pipeline.cli.common import (
    check_venues,
    examples,
    topology_of,
    venue_names,
)
from pipeline.cli.demo import stream_demo
from pipeline.config import Settings
from pipeline.harness import WorkerPool
from pipeline.topology.models import Topology

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


async def prepare_backends(settings: Settings, topology: Topology) -> None:
    """Topics with the declared partitions, and the event store schema."""
    from pipeline.runtime.topics import ensure_topics
    from pipeline.store.eventstore import EventStore

    created = await ensure_topics(settings.kafka, topology)
    if created:
        print(f"topics: created {len(created)}")
    store = await EventStore.connect(settings.postgres)
    await store.close()


async def _serve(settings: Settings, port: int, stop: asyncio.Event) -> None:
    import uvicorn

    from ui.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


async def _run(
    args: argparse.Namespace, settings: Settings, topology: Topology, workers: WorkerPool,
    demo_venues: list[str] | None,
) -> None:
    from pipeline.status import collect_status, render_status

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = asyncio.create_task(_serve(settings, args.port, stop))
    print(f"UI: http://127.0.0.1:{args.port}/ui/   API: /openapi.json   "
          "(Ctrl-C stops everything)")
    if args.demo:
        print(f"demo: streaming {args.demo} sample intents at {args.rate}/s")
        await stream_demo(settings, topology, args.demo, args.rate, seed=int(time.time()),
                          venues=demo_venues)
    last = ""
    while not stop.is_set():
        dead = [w.pid for w in workers.procs if w.poll() is not None]
        if dead:
            print(f"worker(s) {dead} exited; see {settings.data_dir / 'logs'}", file=sys.stderr)
            stop.set()
            break
        try:
            text = render_status(await collect_status(settings, topology))
        except Exception as exc:  # a status hiccup must not take the platform down
            text = f"status unavailable: {exc}"
        if text != last:
            print("\n" + text)
            last = text
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)
    await server


def _cmd_up(args: argparse.Namespace) -> int:
    from pipeline.devstack.stack import DevStack

    topology = topology_of(args)
    demo_venues = check_venues(topology, venue_names(args.demo_venue))
    stack = DevStack(handle_signals=False, chain=True)
    stack.start()
    settings = stack.settings()
    workers = WorkerPool(settings, count=args.workers)
    try:
        asyncio.run(prepare_backends(settings, topology))
        workers.start()
        print(f"workers: {args.workers} started (logs in {stack.data_dir / 'logs'})")
        asyncio.run(_run(args, settings, topology, workers, demo_venues))
    finally:
        print("stopping workers…")
        workers.stop(timeout=20.0)
        stack.stop()
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "up",
        help="start everything locally and run the pipeline",
        description="Start Kafka (KRaft), PostgreSQL, Redis, the pipeline "
        "workers and a status page on this machine, stream demo intents, and "
        "run until Ctrl-C. The first run fetches the Kafka jars once (about a "
        "minute). Services given by SEP_KAFKA / SEP_POSTGRES / SEP_REDIS are "
        "used instead of starting local ones. Data lives in $SEP_DATA (.sep).",
        **examples("sep up", "sep up --workers 3 --demo 0 --port 8800",
                   "SEP_POSTGRES=postgresql://sep@db:5432/sep sep up   "
                   "(an existing PostgreSQL)"),
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--demo",
        type=int,
        default=50,
        help="demo intents to stream once up (0 for none; default 50)",
    )
    p.add_argument("--rate", type=float, default=20.0, help="demo intents per second")
    p.add_argument("--demo-venue", action="append", metavar="NAME",
                   help="restrict the demo intents to this venue (as `sep demo --venue`; "
                   "default: any, which today means the chain)")
    p.add_argument("--port", type=int, default=8700, help="UI and API port (default 8700)")
    p.set_defaults(handler=_cmd_up)
