"""What several ``sep`` subcommands share: the user-facing error, the topology, durations.

Kept free of subcommands so that each subcommand module imports this one and nothing
imports a subcommand but ``main`` (no cycles between them).
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any, TypeAlias

from pipeline.topology import TopologyError, load_topology
from pipeline.topology.models import Topology

if TYPE_CHECKING:
    # What ``add_subparsers()`` returns; each subcommand module's ``register(sub)`` takes it.
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class UserError(Exception):
    """Something the person running ``sep`` can fix; printed without a traceback."""


def topology_of(args: argparse.Namespace) -> Topology:
    """The topology named by ``--topology`` (or the default), a readable error if invalid."""
    try:
        return load_topology(getattr(args, "topology", None))
    except TopologyError as exc:
        raise UserError(str(exc)) from exc


def add_topology_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topology",
        metavar="FILE",
        help="path to a topology file (default: $SEP_TOPOLOGY or the repository's topology.yaml)",
    )


def parse_duration_ms(text: str) -> int:
    """``300000``, ``90s``, ``5m``, ``1h`` -> milliseconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 5m, 1h)")
    value, unit = int(match.group(1)), match.group(2) or "ms"
    return value * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[unit]


def add_venue_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--venue",
        action="append",
        metavar="NAME",
        help="only this venue; repeat or separate with commas for several, "
        "e.g. sim,uniswap_v3 (default: any the planner finds best)",
    )


def venue_names(values: list[str] | None) -> list[str] | None:
    """``--venue a --venue b,c`` -> ``["a", "b", "c"]`` (order kept, repeats dropped);
    ``None`` when the option was not given (any venue)."""
    if values is None:
        return None
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if name and name not in names:
                names.append(name)
    if not names:
        raise UserError("--venue was given without a venue name")
    return names


def check_venues(topology: Topology, names: list[str] | None) -> list[str] | None:
    """``names`` if every one is a venue the topology enables; else a ``UserError`` that
    lists the ones it does (an intent restricted to an unknown venue would only be
    rejected later, by the validate stage, one intent at a time)."""
    if names is None:
        return None
    enabled = [name for name, use in topology.plugins.venues.items() if use.enabled]
    for name in names:
        if name in enabled:
            continue
        if name in topology.plugins.venues:
            raise UserError(
                f"venue {name!r} is disabled in the topology; enabled venues: "
                f"{', '.join(enabled) or 'none'}"
            )
        raise UserError(
            f"unknown venue {name!r}; the topology's venues: {', '.join(enabled) or 'none'}"
        )
    return names


_EXAMPLES = "examples:\n"


class _ExamplesFormatter(argparse.HelpFormatter):
    """Wraps the description as usual but prints the examples as written (one per line).

    ``RawDescriptionHelpFormatter`` would also leave the description unwrapped.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(_EXAMPLES):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*lines: str) -> dict[str, Any]:
    """``add_parser`` keywords for an epilog of examples, each printed on its own line."""
    return {
        "epilog": _EXAMPLES + "\n".join(f"  {line}" for line in lines),
        "formatter_class": _ExamplesFormatter,
    }
