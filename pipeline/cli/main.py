"""``sep``: run, feed and inspect the Strategy Execution Platform.

Each subcommand lives in its own module; this one only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pipeline.cli import (
    backtest,
    bench,
    demo,
    kill,
    market_data,
    plugins_cmd,
    replay,
    risk,
    schema,
    status,
    strategy,
    submit,
    topology_cmd,
    up,
    walkforward,
    worker,
)
from pipeline.cli.common import UserError
from pipeline.config import Settings

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers

DESCRIPTION = """\
Run, feed and inspect the Strategy Execution Platform.

Start here:
  sep up                 start Kafka, PostgreSQL, Redis, the workers and a status page
                         (everything local; nothing to install or configure), then
                         stream a few demo intents through the six stages
  sep submit --dispose 1.5 WETH --for USDC --slippage 0.005 --window 5m
                         send one intent (while `sep up` runs in another terminal)
  sep status             intents per state, events stored, venue fills
  sep worker             one more worker for the running stack

While `sep up` runs, the other commands find its services by themselves (through
$SEP_DATA/stack.json; a variable you set wins).

Services given by URL are used instead of starting local ones:
  SEP_KAFKA=host:9092  SEP_POSTGRES=postgresql://...  SEP_REDIS=redis://...
See .env.example for every setting.
"""


# In the order ``sep --help`` lists them: the first steps first.
SUBCOMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    up.register,
    submit.register,
    demo.register,
    status.register,
    kill.register,
    topology_cmd.register,
    plugins_cmd.register,
    strategy.register,
    worker.register,
    schema.register,
    bench.register,
    replay.register,
    risk.register,
    backtest.register,
    market_data.register,
    walkforward.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sep", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "worker":  # the worker configures its own logging
        from pipeline.logs import configure_logging

        configure_logging(Settings().log_format, "warning")
        # Just after topics are created the broker may answer NotLeaderForPartition for a
        # moment; aiokafka retries it, but warns once per retry. Errors still show.
        logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except UserError as exc:
        print(f"sep {args.command}: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
