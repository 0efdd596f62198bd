"""``sep worker``: one worker process running the topology's stages (all, or ``--stages``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipeline.cli.common import add_topology_option, examples, topology_of
from pipeline.cli.stackfile import settings_for_stack

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _cmd_worker(args: argparse.Namespace) -> int:
    from pipeline.logs import configure_logging
    from pipeline.runtime.worker import run_worker

    settings = settings_for_stack()
    configure_logging(settings.log_format, args.loglevel)
    stages = args.stages.split(",") if args.stages else None
    run_worker(topology_of(args), settings, stages, loglevel=args.loglevel, lane=args.lane)
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "worker",
        help="run one worker process (all stages, or --stages)",
        description="Run one faust worker with the stages of topology.yaml. "
        "Workers with the same app id share the partitions: start more to "
        "scale. Stops gracefully on Ctrl-C / SIGTERM.",
        **examples(
            "sep worker                          (every stage)",
            "sep worker --stages ingest,validate --loglevel info",
            "sep worker --lane fast              (a dedicated lane's worker: lanes.dedicated)",
        ),
    )
    p.add_argument("--stages", help="comma-separated subset, e.g. ingest,validate")
    p.add_argument(
        "--lane",
        help="serve this dedicated lane only (topology.yaml lanes.dedicated): its scheduled "
        "stages and those fused after them, on its lane topics, in a group of its own",
    )
    p.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning"])
    add_topology_option(p)
    p.set_defaults(handler=_cmd_worker)
