"""``sep bench NAME``: run a benchmark from ``bench/`` and print its figures."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import bench
from pipeline.cli.common import examples

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers

# Every module in bench/ is a benchmark named after its file (bench/chain.py -> `sep bench
# chain`), so adding one needs no edit here.  Each has ``main(argv) -> int``.
BENCHES = {
    path.stem: f"bench.{path.stem}"
    for path in Path(bench.__file__).parent.glob("*.py")
    if not path.stem.startswith("_")
}


def _cmd_bench(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHES[args.name])
    result: int = module.main(args.rest)
    return result


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "bench",
        help=f"run a benchmark ({', '.join(sorted(BENCHES))})",
        description="Run a benchmark. It starts what it needs, prints a table "
        "and ends with one JSON line of its figures. Pass the benchmark's own "
        "options after the name, e.g. `sep bench pipeline --help`.",
        **examples(
            "sep bench router",
            "sep bench pipeline --help",
            "sep bench pipeline | tail -1 > figures.json   (the JSON line alone)",
        ),
    )
    p.add_argument("name", choices=sorted(BENCHES))
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_cmd_bench)
