"""``sep bench NAME``: run a benchmark from ``bench/`` and print its figures."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

BENCHES = {"pipeline": "bench.pipeline"}


def _cmd_bench(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHES[args.name])
    result: int = module.main(args.rest)
    return result


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark (pipeline, ...)",
                       description="Run a benchmark. It starts what it needs, prints a table "
                       "and ends with one JSON line of its figures. Pass the benchmark's own "
                       "options after the name, e.g. `sep bench pipeline --help`.")
    p.add_argument("name", choices=sorted(BENCHES))
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_cmd_bench)
