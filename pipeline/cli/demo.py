"""``sep demo``: stream random but fillable sample intents at a steady rate.

``sep up`` streams its start-up demo through ``stream_demo`` too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pipeline.cli.common import (
    add_topology_option,
    add_venue_option,
    check_venues,
    examples,
    topology_of,
    venue_names,
)
from pipeline.cli.stackfile import settings_for_stack
from pipeline.config import Settings
from pipeline.topology.models import Topology

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def demo_submissions(
    topology: Topology, count: int, seed: int, run: str, venues: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """``count`` sample submissions, the same for the same seed; ``run`` makes their client
    ids unique, so a second demo is not dropped as duplicates of the first.

    ``venues`` becomes every intent's ``allowedVenues``; ``None`` leaves the choice to the
    planner, which today routes them all to the chain (its pools quote best).
    """
    from pipeline.samples import random_submission

    rng = random.Random(seed)
    for i in range(count):
        yield random_submission(
            topology,
            rng,
            strategy_id=f"demo-{i % 4}",
            client_intent_id=f"demo-{run}-{i}",
            venues=venues,
        )


async def stream_demo(
    settings: Settings,
    topology: Topology,
    count: int,
    rate: float,
    seed: int,
    venues: list[str] | None = None,
) -> int:
    """Produce ``count`` sample intents at ``rate`` per second; returns how many were sent."""
    from pipeline.client import IntentProducer
    from pipeline.priority.submit_lanes import SubmitLanes

    started = time.monotonic()
    async with IntentProducer(
        settings.kafka, lanes=SubmitLanes(topology), topology=topology
    ) as producer:
        bodies = demo_submissions(topology, count, seed, uuid.uuid4().hex[:6], venues)
        for i, body in enumerate(bodies):
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
    topology = topology_of(args)
    venues = check_venues(topology, venue_names(args.venue))
    settings = settings_for_stack()
    sent = asyncio.run(stream_demo(settings, topology, args.count, args.rate, args.seed, venues))
    where = f" restricted to {', '.join(venues)}" if venues else ""
    print(f"sent {sent} demo intents{where}; watch them with `sep status`")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "demo",
        help="stream sample intents at a steady rate",
        description="Produce random but fillable sample intents (single- and "
        "multi-hop, ACQUIRE and DISPOSE) onto the input topic.",
        **examples(
            "sep demo --count 500 --rate 100",
            "sep demo --venue sim          (the simulated AMM only)",
            "sep demo --venue sim,uniswap_v3 --count 50",
        ),
    )
    p.add_argument("--count", type=int, default=100, help="how many intents (default 100)")
    p.add_argument("--rate", type=float, default=50.0, help="intents per second (default 50)")
    p.add_argument(
        "--seed",
        type=int,
        default=7,
        help="random seed: the same seed sends the same trades (default 7)",
    )
    add_venue_option(p)
    add_topology_option(p)
    p.set_defaults(handler=_cmd_demo)
