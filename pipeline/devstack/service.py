"""The life cycle every embedded service shares: prepare, spawn, probe until healthy, stop.

A service is one child process whose stdout and stderr go to ``<log_dir>/<name>.log``.
Subclasses say how to prepare the data dir (download, initdb, format), which command to
run, and how to probe health with a real client request.
"""

from __future__ import annotations

import abc
import asyncio
import ctypes
import datetime as dt
import logging
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypedDict

from pipeline.devstack.errors import ServiceStartError
from pipeline.devstack.ports import port_is_free, wait_port_released

log = logging.getLogger(__name__)

# Resolved once in the parent: the child calls it between fork and exec, where loading
# a library could deadlock on a lock another thread held at fork time.
_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


class Identity(TypedDict):
    """Popen keyword arguments that switch the child to another system user."""

    user: str | None
    group: int | None
    extra_groups: list[int] | None


def identity(user: str | None) -> Identity:
    """Run as ``user`` with *its* primary group and no supplementary groups.

    Popen(user=...) alone keeps root's groups, and the root group can then be denied by
    group permission bits where "other" would have been allowed.
    """
    if user is None:
        return Identity(user=None, group=None, extra_groups=None)
    return Identity(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])


class Service(abc.ABC):
    """One embedded server process bound to ``127.0.0.1:port`` with its data in ``data_dir``."""

    name: ClassVar[str]
    #: Signal for an orderly shutdown (postgres prefers SIGINT, "fast shutdown").
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int, log_dir: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.log_dir = (log_dir or self.data_dir).resolve()
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepared = False

    # -- what subclasses provide ---------------------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """How clients reach the service (bootstrap servers, DSN, redis URL)."""

    @abc.abstractmethod
    def command(self) -> list[str]:
        """argv of the server process; called after :meth:`setup`."""

    @abc.abstractmethod
    async def probe(self) -> None:
        """One real client request; raises if the service cannot serve it yet."""

    def setup(self) -> None:  # noqa: B027 - optional hook; not every service needs one
        """Idempotent one-off work before the first start (fetch, initdb, format)."""

    def run_as(self) -> str | None:
        """System user to run the server as (postgres refuses root); None keeps ours."""
        return None

    def ports(self) -> list[int]:
        """Every port the process binds, checked before start and after stop."""
        return [self.port]

    # -- life cycle ----------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def prepare(self) -> None:
        """Create the directories and run :meth:`setup`; may run in a worker thread."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.setup()
        self._prepared = True

    def start(self) -> None:
        """Prepare the data dir and spawn the server; returns at once (see wait_healthy)."""
        if self.running:
            return
        busy = [p for p in self.ports() if not port_is_free(p)]
        if busy:
            raise ServiceStartError(self.name, f"port {busy[0]} is already in use")
        if not self._prepared:
            self.prepare()
        argv = self.command()
        log.info("%s: spawning %s", self.name, " ".join(argv))
        with self.log_path.open("ab") as out:
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            out.write(f"\n--- sep devstack: starting {self.name} at {stamp} ---\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                **identity(self.run_as()),
                # Own session: a Ctrl-C in the terminal reaches only us, and we stop the
                # services in order instead of each child dying on its own.
                start_new_session=True,
                preexec_fn=self._die_with_parent_fn(),
            )

    def _die_with_parent_fn(self) -> Callable[[], None] | None:
        """Make the child get ``stop_signal`` if we die (even by SIGKILL): no orphans.

        PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so we only
        set it when spawning from the main thread.
        """
        prctl, sig = _prctl, int(self.stop_signal)
        if prctl is None or threading.current_thread() is not threading.main_thread():
            return None

        def set_pdeathsig() -> None:
            prctl(_PR_SET_PDEATHSIG, sig)

        return set_pdeathsig

    # The timeout is a parameter (ruff ASYNC109) because the stack passes one budget per
    # service and reports which one ran out; asyncio.timeout around it would hide that.
    async def wait_healthy(self, timeout: float = 60.0) -> float:  # noqa: ASYNC109
        """Probe until the service answers; returns the seconds waited.

        Raises :class:`ServiceStartError` (with the log tail) if the process exits or
        the probe still fails at ``timeout``.
        """
        started = time.monotonic()
        last_error: BaseException | None = None
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                reason = f"exited with code {self._proc.returncode} before becoming healthy"
                raise ServiceStartError(self.name, reason, self.log_path)
            try:
                await asyncio.wait_for(self.probe(), timeout=10.0)
            except Exception as exc:  # any failure means "not yet"; the last one is reported
                last_error = exc
            else:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                reason = f"not healthy after {timeout:.0f}s (last probe error: {last_error!r})"
                raise ServiceStartError(self.name, reason, self.log_path)
            await asyncio.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """Orderly shutdown with ``stop_signal``; SIGKILL if still alive after ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s: no exit %.0fs after %s, killing", self.name, timeout, self.stop_signal.name
                )
                proc.kill()
                proc.wait()
        self._proc = None
        self._await_ports_released()

    def kill(self) -> None:
        """SIGKILL without any shutdown work: simulates a crash (for recovery tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None
        self._await_ports_released()

    def _await_ports_released(self) -> None:
        # The main process is gone, but children it forked (postgres backends) may hold
        # the listening socket a moment longer.
        for port in self.ports():
            if not wait_port_released(port, timeout=10.0):
                log.warning("%s: port %d still accepts connections after stop", self.name, port)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.url} {state} data={self.data_dir}>"
