"""A real ``redis-server`` on ``127.0.0.1:port`` with its files in ``data_dir``.

The binary comes from Debian's ``redis-server`` package. The PyPI wheel ``redis-server``
was evaluated as an apt-free alternative and rejected: its only wheels are tagged
cp36-cp39 (pip finds nothing for Python 3.11) and it ships Redis 6.0.9 from 2020.

Lookup order: ``$SEP_REDIS_SERVER``, ``PATH``, ``/usr/bin/redis-server``. If none exists
and we are root on Debian, we install the package with apt (saying so); otherwise
:class:`ToolMissingError` tells the person what to run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from pipeline.config import Settings
from pipeline.devstack.errors import ToolMissingError
from pipeline.devstack.ports import HOST, port_accepts
from pipeline.devstack.probes import check_redis
from pipeline.devstack.service import Service

log = logging.getLogger(__name__)

# Where Debian's package puts it; checked even when /usr/bin is not on PATH (cron, CI).
DEBIAN_REDIS = Path("/usr/bin/redis-server")

INSTALL_HINT = (
    "run `apt-get update && apt-get install -y redis-server` as root, or set SEP_REDIS_SERVER"
)


def find_redis_server(install: bool = True) -> Path:
    """Path of ``redis-server``; installs Debian's package when root and allowed."""
    env = Settings().redis_server
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolMissingError("redis-server", f"SEP_REDIS_SERVER={env} is not an executable")
        return path
    found = shutil.which("redis-server") or (
        str(DEBIAN_REDIS) if os.access(DEBIAN_REDIS, os.X_OK) else None
    )
    if found:
        return Path(found)
    debian_root = os.geteuid() == 0 and Path("/etc/debian_version").exists()
    if install and debian_root and shutil.which("apt-get"):
        _apt_install()
        return find_redis_server(install=False)
    raise ToolMissingError("redis-server", INSTALL_HINT)


def _apt_install() -> None:
    print("redis: redis-server not found; installing it with apt-get (Debian)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "redis-server"]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise ToolMissingError("redis-server", f"`{' '.join(argv)}` failed:\n{tail}")


class RedisServer(Service):
    """redis-server with AOF persistence in ``data_dir``; config written on every start."""

    name = "redis"

    def __init__(self, data_dir: Path, port: int, log_dir: Path | None = None) -> None:
        super().__init__(data_dir, port, log_dir)
        self._binary: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def config(self) -> str:
        return "\n".join(
            [
                f"bind {HOST}",
                f"port {self.port}",
                "protected-mode yes",
                f'dir "{self.data_dir}"',
                # Read models can be rebuilt from the event store (`sep replay`), but ingest's
                # dedupe claims (pipeline/store/dedupe.py) cannot: a claim lost in a restart
                # lets a duplicate submission through as a new intent.  So the append-only
                # file stays on, synced every second (it costs: an XADD of the read model's
                # change stream is ~6 us with it, ~2 us without; bench/RESULTS.md session 10).
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                # Encodings (invisible to clients).  Every intent and plan hash outgrows a
                # listpack anyway (a fill's or the steps' JSON is over 64 bytes), after a
                # linear scan per field written and a conversion; a per-state index of
                # intents hovers around tens of members, where a listpack insert parses
                # every score (strtod).  Hashes as hash tables from the first field, sorted
                # sets as skip lists above 16 members: 5.7 % fewer of Redis' instructions
                # for the read model (callgrind, `sep bench readmodel`'s calls replayed,
                # issue 11 session 12).  The cost: small hashes take more memory.
                "hash-max-listpack-entries 0",
                "zset-max-listpack-entries 16",
                "daemonize no",
                'logfile ""',  # stdout, which Service.start sends to <log_dir>/redis.log
                "loglevel notice",
                "",
            ]
        )

    def setup(self) -> None:
        self._binary = find_redis_server()
        (self.data_dir / "redis.conf").write_text(self.config())

    def command(self) -> list[str]:
        assert self._binary is not None, "setup() first"
        return [str(self._binary), str(self.data_dir / "redis.conf")]

    async def probe(self) -> None:
        if not port_accepts(self.port):
            raise ConnectionRefusedError(f"nothing listens on {HOST}:{self.port} yet")
        await check_redis(self.url)
