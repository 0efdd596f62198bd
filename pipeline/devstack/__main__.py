"""``python -m pipeline.devstack fetch|up``.

``fetch``  fetch and check what the embedded services need (Kafka jars through Maven,
           redis-server, the PostgreSQL binaries); ``deployment/dev.sh`` runs it so the
           first test does not pay for the download.
``up``     run only the three services until Ctrl-C or SIGTERM, printing the variables
           that point other processes at them, e.g. a second terminal running
           ``SEP_KAFKA=... pytest`` reuses them instead of starting its own.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path

from pipeline.devstack.kafka_dist import KAFKA_VERSION, ensure_kafka_jars, kafka_home
from pipeline.devstack.postgres import find_bin_dir
from pipeline.devstack.redis import find_redis_server
from pipeline.devstack.stack import DevStack


def fetch() -> None:
    home = kafka_home()
    print(f"kafka: Kafka {KAFKA_VERSION} jars in {home} (fetched with Maven on first use)")
    started = time.monotonic()
    libs = ensure_kafka_jars()
    print(f"kafka: {len(list(libs.glob('*.jar')))} jars ready ({time.monotonic() - started:.1f}s)")
    print(f"redis: {find_redis_server()}")
    print(f"postgres: {find_bin_dir()}")


def up(data_dir: Path | None) -> None:
    with DevStack(data_dir, handle_signals=True) as stack:
        print(f"export SEP_KAFKA={stack.kafka_bootstrap}")
        print(f"export SEP_POSTGRES={stack.postgres_dsn}")
        print(f"export SEP_REDIS={stack.redis_url}")
        print("services up; Ctrl-C stops them", flush=True)
        while True:
            signal.pause()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="fetch the Kafka jars and check the binaries")
    run = commands.add_parser("up", help="run Kafka, PostgreSQL and Redis until stopped")
    run.add_argument("--data", type=Path, default=None, help="data dir (default $SEP_DATA or .sep)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "fetch":
        fetch()
    else:
        try:
            up(args.data)
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
