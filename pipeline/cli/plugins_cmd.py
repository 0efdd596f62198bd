"""``sep plugins``: each plugin, where it came from, what it registers, what the topology uses."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pipeline.cli.common import add_topology_option, examples, topology_of

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers
    from pipeline.plugins.describe import PluginInfo, PluginReport

KINDS = ("venues", "strategies", "risk_checks", "market_sources")


def _registers(info: PluginInfo) -> str:
    parts = [
        f"{kind.replace('_', ' ')}: {', '.join(names)}"
        for kind in KINDS
        if (names := getattr(info, kind))
    ]
    return "; ".join(parts) or "nothing"


def render_plugins(report: PluginReport) -> str:
    """A table of the plugins, then the problems (none: a line saying so)."""
    rows = [("PLUGIN", "VERSION", "DISTRIBUTION", "SOURCE", "REGISTERS", "USED BY THE TOPOLOGY")]
    for info in report.plugins:
        used = ", ".join(info.used) or ("-" if info.error else "no")
        registers = f"failed to load: {info.error}" if info.error else _registers(info)
        rows.append(
            (
                info.name,
                info.version or "-",
                info.distribution or "-",
                info.source,
                registers,
                used,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    lines.append("")
    lines += [f"problem: {p}" for p in report.problems] or ["no problems"]
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from pipeline.plugins.describe import plugin_report
    from pipeline.plugins.manager import make_plugin_manager

    report = plugin_report(make_plugin_manager(), topology_of(args))
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [info.as_json() for info in report.plugins],
                    "problems": report.problems,
                },
                indent=2,
            )
        )
    else:
        print(render_plugins(report))
    return 1 if report.problems else 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "plugins",
        help="list the plugins: where each came from, what it registers, what is used",
        description="List the built-in plugins and those installed through the 'sep' "
        "entry-point group (pip install sep-denylist), with their version and distribution, "
        "what each registers (venues, strategies, risk checks, market sources) and what the "
        "topology uses of it. A plugin that failed to load is listed with its error. Exits "
        "1 if two plugins register one name or the topology asks for what no plugin gives.",
        **examples(
            "sep plugins",
            "pip install plugins/examples/denylist && sep plugins   (denylist is listed)",
            "sep plugins --json | jq '.plugins[] | select(.used != [])'",
        ),
    )
    add_topology_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_plugins)
