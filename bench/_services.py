"""The services a pipeline benchmark runs against (a module of helpers, not a benchmark)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import Settings


@contextmanager
def bench_services() -> Iterator[Settings]:
    """Kafka, PostgreSQL, Redis and the chain on free ports in a temporary directory.

    The chain too: the workers connect every venue in the topology (uniswap_v3 included),
    although the benchmarks' intents are routed on the sim venue only.
    """
    from pipeline.devstack import ANY_PORTS, DevStack

    with tempfile.TemporaryDirectory(prefix="sep-bench-") as tmp:
        stack = DevStack(
            Path(tmp) / "services",
            ANY_PORTS,
            chain=True,
            progress=lambda line: print(line, file=sys.stderr),
        )
        stack.start()
        try:
            yield stack.settings(Path(tmp) / "data")
        finally:
            stack.stop()


@contextmanager
def redis_service() -> Iterator[str]:
    """Redis alone (the devstack's, on a free port in a temporary directory): its URL.

    For benchmarks of the read models, which need nothing else; the same server and
    configuration (AOF, fsync every second) as ``bench_services`` starts."""
    from pipeline.devstack.ports import choose_port
    from pipeline.devstack.redis import RedisServer

    with tempfile.TemporaryDirectory(prefix="sep-bench-redis-") as tmp:
        server = RedisServer(Path(tmp), choose_port(0))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
