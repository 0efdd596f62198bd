"""``sep plugins``: the installed plugins, where each came from and what it registers."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipeline.cli.common import examples

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _cmd_plugins(args: argparse.Namespace) -> int:
    from pipeline.plugins.manager import describe_plugins, make_plugin_manager

    pm = make_plugin_manager(load_entrypoints=True)
    for info in describe_plugins(pm):
        venues = f"venues: {', '.join(info.venues)}" if info.venues else "no venues"
        print(f"{info.name:<28} {info.source:<24} {venues}")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser("plugins", help="list installed plugins and where they came from",
                       description="List the built-in plugins and those installed through the "
                       "'sep' entry-point group (pip install sep-venue-foo), with what they "
                       "register.",
                       **examples("sep plugins",
                                  "pip install sep-venue-foo && sep plugins   "
                                  "(foo's venues are listed)"))
    p.set_defaults(handler=_cmd_plugins)
