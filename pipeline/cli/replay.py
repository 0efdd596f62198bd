"""``sep replay``: rebuild every read model from the event store, then swap it in (or compare).

sep replay            rebuild into a fresh namespace, swap atomically, catch up
sep replay --verify   rebuild, print every difference from the live models, drop the rebuild
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from pipeline.cli import counterfactual
from pipeline.cli.common import add_topology_option, examples, topology_of
from pipeline.cli.stackfile import settings_for_stack
from pipeline.config import Settings
from pipeline.topology.models import Topology

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _progress(done: int, total: int) -> None:
    share = f" ({done / total:.0%})" if total else ""
    print(f"\rreplayed {done:,}/{total:,} events{share}", end="", file=sys.stderr, flush=True)


async def run(
    settings: Settings, topology: Topology, *, verify: bool, batch: int = 5000, quiet: bool = False
) -> int:
    from pipeline.store import replay  # here: `sep --help` need not load Redis and asyncpg

    rebuilt = await replay.rebuild(
        settings, topology, batch=batch, progress=None if quiet else _progress
    )
    if not quiet:
        print(file=sys.stderr)
    print(
        f"rebuilt {rebuilt.events:,} events in {rebuilt.seconds:.2f}s "
        f"({rebuilt.events_per_second:,.0f} events/s) into {rebuilt.prefix!r}"
    )
    if verify:
        try:
            differences = await replay.verify(settings, rebuilt)
        finally:
            await replay.drop(settings, rebuilt)
        for difference in differences:
            print(f"  {difference}")
        print(
            "rebuilt and live read models are identical"
            if not differences
            else f"{len(differences)} difference(s) between live and rebuilt"
        )
        return 1 if differences else 0
    moved, caught_up = await replay.swap(settings, topology, rebuilt)
    print(f"swapped in {moved:,} keys; caught up on {caught_up:,} events stored meanwhile")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.counterfactual:
        return counterfactual.run(args)
    topology = topology_of(args)
    return asyncio.run(run(settings_for_stack(), topology, verify=args.verify, batch=args.batch))


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "replay",
        help="rebuild the read models from the event store",
        description="Rebuild every Redis read model (intents, plans, positions, "
        "stats) from the PostgreSQL event store into a fresh namespace, then swap "
        "it in atomically; the change stream is kept. With --verify, compare "
        "instead and print every difference (exit 1 if any).",
        **examples(
            "sep replay --verify   (compare; changes nothing)",
            "sep replay            (rebuild and swap in)",
            "sep replay --counterfactual --events backtest-out/events.jsonl --data pump.jsonl "
            "--set plan.max_splits=1 risk.max_notional=5000",
        ),
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare the rebuilt models with the live ones; change nothing",
    )
    p.add_argument("--batch", type=int, default=5000, help="events per read (default 5000)")
    counterfactual.add_arguments(p)
    add_topology_option(p)
    p.set_defaults(handler=_cmd_replay)
