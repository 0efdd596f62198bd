"""``sep status``: intents per state, events stored, from the read model and the event store."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from pipeline.cli.common import add_topology_option, examples, topology_of
from pipeline.cli.stackfile import settings_for_stack

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline.status import collect_status, render_status

    status = asyncio.run(collect_status(settings_for_stack(), topology_of(args)))
    print(json.dumps(status, indent=2, default=str) if args.json else render_status(status))
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "status",
        help="intents per state, events stored, venue fills",
        description="Read the Redis read model and the event store and print "
        "how many intents are in each state.",
        **examples("sep status", "sep status --json | jq .states"),
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_topology_option(p)
    p.set_defaults(handler=_cmd_status)
