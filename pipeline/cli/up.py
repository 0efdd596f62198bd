"""``sep up``: the whole platform on one machine, on embedded defaults.

Starts Kafka, PostgreSQL and Redis (or uses the ones given by URL), creates the topics,
migrates the event store, starts the workers and the status page, streams a few demo
intents, and keeps everything running until Ctrl-C, then stops it all in order.

A worker that exits is restarted with backoff (``pipeline/supervisor.py``); one that keeps
crashing makes ``sep up`` stop everything and exit with status 1. While it runs, its
services are described in ``<SEP_DATA>/stack.json`` for other ``sep`` commands
(``pipeline/cli/stackfile.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import secrets
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
from pipeline.cli.stackfile import (
    SECRETS_FILE,
    STATE_FILE,
    refuse_second_stack,
    remove_state,
    write_state,
)
from pipeline.config import Settings
from pipeline.harness import WorkerPool
from pipeline.runtime.handover import hand_over
from pipeline.runtime.lane_workers import dedicated_lanes
from pipeline.runtime.placement import PlacementError, resolve_layout
from pipeline.supervisor import RestartPolicy, Supervisor, WorkerGaveUp
from pipeline.topology.models import MODE_NOTES, Topology

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


async def _serve(settings: Settings, topology: Topology, port: int, stop: asyncio.Event) -> None:
    import uvicorn

    from ui.app import create_app

    app = create_app(settings, topology)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


async def watch_workers(supervisor: Supervisor, stop: asyncio.Event) -> int:
    """Keep the workers running until ``stop``; 0, or 1 once the supervisor gave up (then
    ``stop`` is set, so everything else winds down too)."""
    try:
        await supervisor.run(stop)
    except WorkerGaveUp as exc:
        print(f"sep up: {exc}; stopping everything", file=sys.stderr, flush=True)
        stop.set()
        return 1
    return 0


async def _demo(
    settings: Settings,
    topology: Topology,
    args: argparse.Namespace,
    venues: list[str] | None,
    stop: asyncio.Event,
) -> None:
    """The start-up demo, cut short by Ctrl-C."""
    print(
        f"demo: streaming {args.demo} sample intents at {args.rate}/s"
        + (f" restricted to {', '.join(venues)}" if venues else "")
    )
    demo = asyncio.create_task(
        stream_demo(settings, topology, args.demo, args.rate, seed=int(time.time()), venues=venues)
    )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({demo, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (demo, stopped):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await demo


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    topology: Topology,
    workers: WorkerPool,
    demo_venues: list[str] | None,
) -> int:
    from pipeline.status import collect_status, render_status

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = asyncio.create_task(_serve(settings, topology, args.port, stop))
    supervisor = Supervisor(workers, RestartPolicy.from_settings(settings))
    watching = asyncio.create_task(watch_workers(supervisor, stop))
    print(f"UI: http://127.0.0.1:{args.port}/ui/   API: /openapi.json   (Ctrl-C stops everything)")
    if args.demo:
        await _demo(settings, topology, args, demo_venues, stop)
    last = ""
    while not stop.is_set():
        # Ctrl-C must not wait for a status read that is slow (a store under load).
        reading = asyncio.ensure_future(collect_status(settings, topology))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            break
        try:
            text = render_status(reading.result())
        except Exception as exc:  # a status hiccup must not take the platform down
            text = f"status unavailable: {exc}"
        if text != last:
            print("\n" + text)
            last = text
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)
    await server
    return await watching


def _cmd_up(args: argparse.Namespace) -> int:
    from pipeline.devstack.stack import DevStack

    topology = topology_of(args)
    if args.mode is not None:  # --mode wins over SEP_MODE and the file's app.mode
        topology = topology.with_mode(args.mode)
    demo_venues = check_venues(topology, venue_names(args.demo_venue))
    stack = DevStack(handle_signals=False, chain=True)
    if note := refuse_second_stack(stack.data_dir):
        print(note)
    stack.start()
    # Every process of the stack (workers, UI, `sep status` attached by stack.json) loads
    # the topology in this mode (SEP_MODE, pipeline.topology.load_topology).
    settings = dataclasses.replace(stack.settings(), mode=topology.app.mode)
    if not settings.operator_token:
        # Operator actions (kill switch, re-drive) need a token; a stack of one's own gets a
        # fresh one, kept with the stack's other secrets (never printed or logged).
        settings = dataclasses.replace(settings, operator_token=secrets.token_urlsafe(24))
    try:
        layout = resolve_layout(topology, args.layout, args.workers)
    except PlacementError as exc:
        raise SystemExit(f"sep up: --layout: {exc}") from exc
    workers = WorkerPool(
        settings,
        count=args.workers,
        layout=layout,
        singletons=topology.singleton_stages,
        lanes=dedicated_lanes(topology),
    )
    try:
        asyncio.run(prepare_backends(settings, topology))
        # A stack that ran another layout: its groups' offsets, not the topics' beginning.
        handed = asyncio.run(
            hand_over(
                settings.kafka,
                topology,
                layout,
                fuse=settings.fusion,
                feedback=settings.fusion_feedback,
            )
        )
        for group, offsets in handed.items():
            print(f"consumer group {group}: {len(offsets)} partitions' offsets taken over")
        workers.start()
        own = [*topology.singleton_stages, *(f"lane {lane}" for lane in workers.lanes)]
        alone = f" + {', '.join(own)}" if own else ""
        print(f"mode: {topology.app.mode}{MODE_NOTES.get(topology.app.mode, '')}")
        print(
            f"workers: {' | '.join(layout) if layout else args.workers}{alone} started "
            f"(logs in {stack.data_dir / 'logs'}); "
            f"a crashed one is restarted"
        )
        with_password = write_state(
            stack.data_dir, settings, ui=f"http://127.0.0.1:{args.port}/ui/"
        )
        print(
            f"state: {stack.data_dir / STATE_FILE} (`sep worker`, `sep status`, … started "
            "from here attach to this stack by it)"
        )
        if with_password:
            print(
                f"  {', '.join(with_password)} hold a secret: masked there, kept in "
                f"{stack.data_dir / SECRETS_FILE} (mode 0600; the operator token is the "
                "API's `Authorization: Bearer …` for operator actions)"
            )
        return asyncio.run(_run(args, settings, topology, workers, demo_venues))
    finally:
        remove_state(stack.data_dir)
        print("stopping workers…")
        workers.stop(timeout=20.0)
        stack.stop()


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "up",
        help="start everything locally and run the pipeline",
        description="Start Kafka (KRaft), PostgreSQL, Redis, a local chain with Uniswap V3, "
        "the pipeline workers and a status page on this machine, stream demo intents, and "
        "run until Ctrl-C. The first run fetches the Kafka jars once (about a "
        "minute). Services given by SEP_KAFKA / SEP_POSTGRES / SEP_REDIS are "
        "used instead of starting local ones. Data lives in $SEP_DATA (.sep). "
        "Modes (--mode, else SEP_MODE, else the topology's app.mode): live sends real "
        "transactions through the chain venues; paper fills each intent on a paper twin of "
        "each chain venue (same venue name) at the chain pools' live states, with the sim "
        "venue's fill model and fees, and sends nothing (docs/paper.md).",
        **examples(
            "sep up",
            "sep up --mode paper --demo-venue uniswap_v3   (chain prices, paper fills)",
            "sep up --workers 3 --demo 0 --port 8800",
            "sep up --layout identical   (every worker runs every stage)",
            "SEP_POSTGRES=postgresql://sep@db:5432/sep sep up   (an existing PostgreSQL)",
        ),
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes of each kind of the layout (default 2: two of the execution path and "
        "two of project; with --layout identical, two running every stage)",
    )
    p.add_argument(
        "--layout",
        default=None,
        help="which stages each worker process runs. 'split' (the default when a stage "
        "declares a niceness in topology.yaml, as project does): --workers processes of "
        "the execution path (ingest -> execute, fused), which gather their fetches "
        "(SEP_FETCH_GATHER_MS), and --workers of project at its lower CPU priority; on two "
        "cores this meets 500/s submit -> plan p99 <= 100 ms, which identical workers miss, "
        "while the read models fall behind by ~1 s at a sustained 500/s (bench/RESULTS.md, "
        "Session 18). 'identical': --workers processes each running every stage. Or "
        "processes separated by ';' (e.g. 'ingest,validate,prioritise,plan,execute;project'). "
        "Each distinct stage list is a consumer group of its own: started on a stack that ran "
        "'identical' or 'split', a new group first takes the offsets the other layout's groups "
        "committed (pipeline/runtime/handover.py); other layouts read the topics from the "
        "start (harmless, as any redelivery, but slow)",
    )
    p.add_argument(
        "--demo",
        type=int,
        default=50,
        help="demo intents to stream once up (0 for none; default 50)",
    )
    p.add_argument("--rate", type=float, default=20.0, help="demo intents per second")
    p.add_argument(
        "--demo-venue",
        action="append",
        metavar="NAME",
        help="restrict the demo intents to this venue (as `sep demo --venue`; "
        "default: any, which today means the chain)",
    )
    p.add_argument("--port", type=int, default=8700, help="UI and API port (default 8700)")
    p.add_argument(
        "--mode",
        choices=["live", "paper"],
        help="live: chain venues send real transactions; paper: paper twins fill at the "
        "chain's live pool states, nothing is sent (default: SEP_MODE, else app.mode in "
        "topology.yaml)",
    )
    p.set_defaults(handler=_cmd_up)
