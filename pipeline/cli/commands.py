"""The small ``sep`` subcommands; ``up`` and ``bench`` have modules of their own."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from pipeline.cli import replay
from pipeline.config import Settings
from pipeline.topology import TopologyError, load_topology

Sub = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UserError(Exception):
    """Something the person running ``sep`` can fix; printed without a traceback."""


def _topology(args: argparse.Namespace) -> Any:
    try:
        return load_topology(getattr(args, "topology", None))
    except TopologyError as exc:
        raise UserError(str(exc)) from exc


def parse_duration_ms(text: str) -> int:
    """``300000``, ``90s``, ``5m``, ``1h`` -> milliseconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 5m, 1h)")
    value, unit = int(match.group(1)), match.group(2) or "ms"
    return value * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


# ----------------------------------------------------------------------------- topology


def _cmd_topology(args: argparse.Namespace) -> int:
    from pipeline.cli.topology_cmd import render_topology

    print(render_topology(_topology(args)))
    return 0


def register_topology(sub: Any) -> None:
    p = sub.add_parser("topology", help="print the pipeline graph from topology.yaml",
                       description="Validate topology.yaml and print its stages and topics: "
                       "who produces and who consumes each topic.")
    p.add_argument("--topology", help="path to a topology file (default: $SEP_TOPOLOGY or "
                   "the repository's topology.yaml)")
    p.set_defaults(handler=_cmd_topology)


# ----------------------------------------------------------------------------- plugins


def _cmd_plugins(args: argparse.Namespace) -> int:
    from pipeline.plugins.manager import describe_plugins, make_plugin_manager

    pm = make_plugin_manager(load_entrypoints=True)
    for info in describe_plugins(pm):
        venues = f"venues: {', '.join(info.venues)}" if info.venues else "no venues"
        print(f"{info.name:<28} {info.source:<24} {venues}")
    return 0


def register_plugins(sub: Any) -> None:
    p = sub.add_parser("plugins", help="list installed plugins and where they came from",
                       description="List the built-in plugins and those installed through the "
                       "'sep' entry-point group (pip install sep-venue-foo), with what they "
                       "register.")
    p.set_defaults(handler=_cmd_plugins)


# ----------------------------------------------------------------------------- schema


def _cmd_schema(args: argparse.Namespace) -> int:
    from pipeline.models.schema import export_schemas

    written = export_schemas(Path(args.out))
    print(f"wrote {len(written)} JSON Schemas to {args.out}")
    return 0


def register_schema(sub: Any) -> None:
    p = sub.add_parser("schema", help="export the JSON Schema of every wire model",
                       description="Write one JSON Schema file per wire model (intent "
                       "submission, event envelope, each event payload) for UIs and producers.")
    p.add_argument("--out", default="schemas", help="directory to write to (default: schemas)")
    p.set_defaults(handler=_cmd_schema)


# ----------------------------------------------------------------------------- worker


def _cmd_worker(args: argparse.Namespace) -> int:
    from pipeline.logs import configure_logging
    from pipeline.runtime.worker import run_worker

    configure_logging(Settings().log_format, args.loglevel)
    stages = args.stages.split(",") if args.stages else None
    run_worker(_topology(args), Settings(), stages, loglevel=args.loglevel)
    return 0


def register_worker(sub: Any) -> None:
    p = sub.add_parser("worker", help="run one worker process (all stages, or --stages)",
                       description="Run one faust worker with the stages of topology.yaml. "
                       "Workers with the same app id share the partitions: start more to "
                       "scale. Stops gracefully on Ctrl-C / SIGTERM.")
    p.add_argument("--stages", help="comma-separated subset, e.g. ingest,validate")
    p.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning"])
    p.add_argument("--topology")
    p.set_defaults(handler=_cmd_worker)


# ----------------------------------------------------------------------------- submit


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc


async def _submit(settings: Settings, body: dict[str, Any]) -> tuple[int, Any]:
    from pipeline.client import IntentProducer

    async with IntentProducer(settings.kafka) as producer:
        stamp, future = await producer.send(body)
        await future
        return stamp, future.result()


def _cmd_submit(args: argparse.Namespace) -> int:
    from pipeline.client import predicted_intent_id
    from pipeline.samples import submission

    topology = _topology(args)
    if args.file:
        body = orjson.loads(Path(args.file).read_bytes())
    else:
        if not (args.dispose or args.acquire) or not args.counter:
            raise UserError("give --dispose AMOUNT ASSET or --acquire AMOUNT ASSET, and --for "
                            "ASSET (or --file intent.json)")
        kind, (amount, subject) = ("DISPOSE", args.dispose) if args.dispose else (
            "ACQUIRE", args.acquire)
        try:
            body = submission(topology, kind, subject, args.counter, _amount(amount),
                              strategy_id=args.strategy, max_slippage=args.slippage,
                              time_window_ms=args.window, style=args.style,
                              venues=args.venue)
        except KeyError as exc:
            known = ", ".join(a.symbol for a in topology.assets)
            raise UserError(f"unknown asset {exc.args[0]!r}; known: {known}") from exc
    if isinstance(body, dict) and "clientIntentId" not in body:
        body["clientIntentId"] = f"cli-{uuid.uuid4().hex[:12]}"
    stamp, meta = asyncio.run(_submit(Settings(), body))
    intent_id = predicted_intent_id(stamp, str(body.get("strategyId")), body["clientIntentId"])
    print(json.dumps({"intentId": intent_id, "clientIntentId": body["clientIntentId"],
                      "partition": meta.partition, "offset": meta.offset}))
    return 0


def register_submit(sub: Any) -> None:
    p = sub.add_parser("submit", help="send one intent onto sep.intents.submitted",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Send one intent. Prints the intent id the pipeline will "
                       "give it.\n\nexamples:\n"
                       "  sep submit --dispose 1.5 WETH --for USDC --slippage 0.005 --window 5m\n"
                       "  sep submit --acquire 1000 DAI --for USDC --style PASSIVE\n"
                       "  sep submit --dispose 2 WETH --for USDC --venue uniswap_v3   (on chain)\n"
                       "  sep submit --file intent.json   (an IntentSubmission, camelCase JSON)")
    p.add_argument("--dispose", nargs=2, metavar=("AMOUNT", "ASSET"),
                   help="sell exactly AMOUNT of ASSET")
    p.add_argument("--acquire", nargs=2, metavar=("AMOUNT", "ASSET"),
                   help="buy exactly AMOUNT of ASSET")
    p.add_argument("--for", dest="counter", metavar="ASSET", help="the asset paid or received")
    p.add_argument("--slippage", default="0.005", help="max slippage as a fraction (0.005 = 0.5%%)")
    p.add_argument("--window", type=parse_duration_ms, default=300_000,
                   help="time window: 30s, 5m, 1h (default 5m)")
    p.add_argument("--style", default="ADAPTIVE", choices=["AGGRESSIVE", "ADAPTIVE", "PASSIVE"])
    p.add_argument("--strategy", default="cli", help="strategy id (default: cli)")
    p.add_argument("--venue", action="append", metavar="NAME",
                   help="only this venue (repeat for several): sim, uniswap_v3 (default: any)")
    p.add_argument("--file", help="a JSON IntentSubmission to send as is")
    p.add_argument("--topology")
    p.set_defaults(handler=_cmd_submit)


# ----------------------------------------------------------------------------- demo


async def _demo(settings: Settings, topology: Any, count: int, rate: float, seed: int) -> int:
    import random

    from pipeline.client import IntentProducer
    from pipeline.samples import random_submission

    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    started = time.monotonic()
    async with IntentProducer(settings.kafka) as producer:
        for i in range(count):
            body = random_submission(topology, rng, strategy_id=f"demo-{i % 4}",
                                     client_intent_id=f"demo-{run}-{i}")
            await producer.send(body)
            due = started + (i + 1) / rate
            if (pause := due - time.monotonic()) > 0:
                await asyncio.sleep(pause)
            if (i + 1) % max(1, count // 10) == 0 or i + 1 == count:
                print(f"\rsent {i + 1}/{count}", end="", file=sys.stderr, flush=True)
        await producer.flush()
    print(file=sys.stderr)
    return count


def _cmd_demo(args: argparse.Namespace) -> int:
    sent = asyncio.run(_demo(Settings(), _topology(args), args.count, args.rate, args.seed))
    print(f"sent {sent} demo intents; watch them with `sep status`")
    return 0


def register_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="stream sample intents at a steady rate",
                       description="Produce random but fillable sample intents (single- and "
                       "multi-hop, ACQUIRE and DISPOSE) onto the input topic.")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--rate", type=float, default=50.0, help="intents per second")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--topology")
    p.set_defaults(handler=_cmd_demo)


# ----------------------------------------------------------------------------- status


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline.status import collect_status, render_status

    status = asyncio.run(collect_status(Settings(), _topology(args)))
    print(json.dumps(status, indent=2, default=str) if args.json else render_status(status))
    return 0


def register_status(sub: Any) -> None:
    p = sub.add_parser("status", help="intents per state, events stored, venue fills",
                       description="Read the Redis read model and the event store and print "
                       "how many intents are in each state.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--topology")
    p.set_defaults(handler=_cmd_status)


def _register_up(sub: Any) -> None:
    from pipeline.cli.up import register

    register(sub)


def _register_bench(sub: Any) -> None:
    from pipeline.cli.bench import register

    register(sub)


REGISTRY: tuple[Callable[[Any], None], ...] = (
    _register_up, register_submit, register_demo, register_status, register_topology,
    register_plugins, register_worker, register_schema, _register_bench,
    replay.register,
)
