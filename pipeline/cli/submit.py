"""``sep submit``: send one intent onto the input topic and print the id it will get."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.cli.common import (
    UserError,
    add_topology_option,
    add_venue_option,
    check_venues,
    examples,
    parse_duration_ms,
    topology_of,
    venue_names,
)
from pipeline.cli.stackfile import settings_for_stack
from pipeline.config import Settings

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers
    from pipeline.topology.models import Topology


def _amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc


async def _send(settings: Settings, body: dict[str, Any], topology: Topology) -> dict[str, Any]:
    """Claim the dedupe key, then produce (as ``POST /intents`` does): a duplicate prints the
    id of the intent that exists, never one that never will.  A body that is not a valid
    submission (``--file`` to try a rejection) is sent as it is, for ingest to reject."""
    from pydantic import ValidationError

    from pipeline.client import IntentProducer, submit_once
    from pipeline.intent_ids import record_intent_id
    from pipeline.models.intent import IntentSubmission
    from pipeline.priority.submit_lanes import SubmitLanes
    from pipeline.stages.base import now_ms
    from pipeline.store.dedupe import RedisDedupeStore

    # With lanes.submit: to the input lane topic of the submission's score.
    async with IntentProducer(
        settings.kafka, lanes=SubmitLanes(topology), topology=topology
    ) as producer:
        try:
            intent = IntentSubmission.model_validate(body)
        except ValidationError:
            stamp, future = await producer.send(body)
            sent = await future
            return {
                # A rejection's id comes from where its record is (``pipeline.intent_ids``).
                "intentId": record_intent_id(
                    stamp, sent.topic, sent.partition, sent.offset, topology
                ),
                "status": "submitted (ingest will reject it: not a valid intent)",
            }
        dedupe = RedisDedupeStore.connect(
            settings.redis, settings.redis_prefix, settings.dedupe_ttl_s
        )
        try:
            done = await submit_once(producer, dedupe, intent, timestamp_ms=now_ms())
        finally:
            await dedupe.close()
        return {
            "intentId": done.intent_id,
            "status": "duplicate" if done.duplicate else "submitted",
        }


def _cmd_submit(args: argparse.Namespace) -> int:
    from pipeline.samples import submission

    topology = topology_of(args)
    if args.file:
        body = orjson.loads(Path(args.file).read_bytes())
    else:
        if not (args.dispose or args.acquire) or not args.counter:
            raise UserError(
                "give --dispose AMOUNT ASSET or --acquire AMOUNT ASSET, and --for "
                "ASSET (or --file intent.json)"
            )
        kind, (amount, subject) = (
            ("DISPOSE", args.dispose) if args.dispose else ("ACQUIRE", args.acquire)
        )
        try:
            body = submission(
                topology,
                kind,
                subject,
                args.counter,
                _amount(amount),
                strategy_id=args.strategy,
                max_slippage=args.slippage,
                time_window_ms=args.window,
                style=args.style,
                venues=check_venues(topology, venue_names(args.venue)),
            )
        except KeyError as exc:
            known = ", ".join(a.symbol for a in topology.assets)
            raise UserError(f"unknown asset {exc.args[0]!r}; known: {known}") from exc
    if isinstance(body, dict) and "clientIntentId" not in body:
        body["clientIntentId"] = f"cli-{uuid.uuid4().hex[:12]}"
    answer = asyncio.run(_send(settings_for_stack(), body, topology))
    print(json.dumps({**answer, "clientIntentId": body["clientIntentId"]}))
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "submit",
        help="send one intent onto sep.intents.submitted",
        description="Send one intent. Prints the intent id the pipeline will give it.",
        **examples(
            "sep submit --dispose 1.5 WETH --for USDC --slippage 0.005 --window 5m",
            "sep submit --acquire 1000 DAI --for USDC --style PASSIVE",
            "sep submit --dispose 2 WETH --for USDC --venue uniswap_v3   (on chain)",
            "sep submit --file intent.json   (an IntentSubmission, camelCase JSON)",
        ),
    )
    p.add_argument(
        "--dispose", nargs=2, metavar=("AMOUNT", "ASSET"), help="sell exactly AMOUNT of ASSET"
    )
    p.add_argument(
        "--acquire", nargs=2, metavar=("AMOUNT", "ASSET"), help="buy exactly AMOUNT of ASSET"
    )
    p.add_argument("--for", dest="counter", metavar="ASSET", help="the asset paid or received")
    p.add_argument("--slippage", default="0.005", help="max slippage as a fraction (0.005 = 0.5%%)")
    p.add_argument(
        "--window",
        type=parse_duration_ms,
        default=300_000,
        help="time window: 30s, 5m, 1h (default 5m)",
    )
    p.add_argument("--style", default="ADAPTIVE", choices=["AGGRESSIVE", "ADAPTIVE", "PASSIVE"])
    p.add_argument("--strategy", default="cli", help="strategy id (default: cli)")
    add_venue_option(p)
    p.add_argument("--file", help="a JSON IntentSubmission to send as is")
    add_topology_option(p)
    p.set_defaults(handler=_cmd_submit)
