"""The state file a running ``sep up`` keeps in its data directory, and attaching to it.

``sep up`` writes ``<SEP_DATA>/stack.json`` once its services and workers are up, and
removes it when it stops::

    {"pid": 4242, "pidStart": "1234567", "started": "2025-05-01T09:30:00Z",
     "ui": "http://127.0.0.1:8700/ui/", "secrets": null,
     "environment": {"SEP_KAFKA": "127.0.0.1:19092", "SEP_POSTGRES": "postgresql://…",
                     "SEP_REDIS": "redis://…", "SEP_RPC": "http://…", "SEP_DEPLOYMENT": "…",
                     "SEP_REDIS_PREFIX": ""}}

``environment`` holds exactly the variables a process would otherwise need to reach that
stack. The commands that talk to a stack (``sep worker``, ``status``, ``submit``, ``demo``,
``replay``) read it and take each variable that is *not* set in their own environment, so
an explicit variable always wins. They put what they take into their environment, not only
into ``Settings``: a venue plugin that builds its own ``Settings()`` then sees the same
stack, as it would in a worker ``sep up`` started itself.

A URL holding a password is written masked; the real one goes to ``stack.secrets.json``
beside it, mode 0600, named by ``secrets``. A file whose ``sep up`` is gone (killed with
SIGKILL, machine rebooted) is stale: its pid is not alive, or is now another process
(``pidStart``, the process start time from ``/proc``). It is ignored with a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.cli.common import UserError
from pipeline.config import Settings, mask_url

STATE_FILE = "stack.json"
SECRETS_FILE = "stack.secrets.json"


SECRET_VARIABLES = frozenset({"SEP_OPERATOR_TOKEN"})
"""Variables that are secrets whole (not URLs with a password in them)."""


def stack_environment(settings: Settings) -> dict[str, str]:
    """The variables that point a process at the stack ``settings`` describe."""
    environment = {
        "SEP_KAFKA": settings.kafka,
        "SEP_POSTGRES": settings.postgres,
        "SEP_REDIS": settings.redis,
        "SEP_RPC": settings.rpc,
        "SEP_DEPLOYMENT": str(settings.deployment),
        "SEP_REDIS_PREFIX": settings.redis_prefix,
    }
    if settings.mode:  # sep up --mode: every command attached to the stack sees its mode
        environment["SEP_MODE"] = settings.mode
    if settings.operator_token:
        environment["SEP_OPERATOR_TOKEN"] = settings.operator_token
    return environment


def _masked(var: str, value: str) -> str:
    return "***" if var in SECRET_VARIABLES else mask_url(value)


@dataclass(frozen=True)
class StackState:
    pid: int
    started: str
    environment: dict[str, str]
    """Secrets resolved once read (``read_state``); masked in the file itself."""
    ui: str | None = None
    pid_start: str | None = None
    path: Path | None = None

    def describe(self) -> str:
        ui = f", UI {self.ui}" if self.ui else ""
        return f"pid {self.pid}, up since {self.started}{ui}; {self.path}"


class StaleState(Exception):
    """The state file names a ``sep up`` that is no longer running."""


def process_start(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from /proc), or None where unknown.

    Tells a live ``sep up`` from an unrelated process that was given its pid later.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count after its ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        pass
    now = process_start(pid)
    return started is None or now is None or now == started


# ----------------------------------------------------------------------------- writing


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, whatever the umask."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    os.replace(tmp, path)


def write_state(
    data_dir: Path,
    settings: Settings,
    *,
    ui: str | None = None,
    pid: int | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Write the state file for this process's stack; returns the variables whose
    values hold a password (kept in the 0600 secrets file, masked in the state file)."""
    pid = os.getpid() if pid is None else pid
    environment = stack_environment(settings)
    secrets = {var: value for var, value in environment.items() if _masked(var, value) != value}
    secrets_path = data_dir / SECRETS_FILE
    if secrets:
        _write_private(secrets_path, json.dumps(secrets, indent=2))
    else:
        secrets_path.unlink(missing_ok=True)
    started = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state: dict[str, Any] = {
        "pid": pid,
        "pidStart": process_start(pid),
        "started": started,
        "ui": ui,
        "secrets": SECRETS_FILE if secrets else None,
        "environment": {var: _masked(var, value) for var, value in environment.items()},
    }
    tmp = data_dir / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, data_dir / STATE_FILE)
    return sorted(secrets)


def remove_state(data_dir: Path, pid: int | None = None) -> None:
    """Remove the state file (and its secrets) if ``pid`` (default: us) wrote it."""
    path = data_dir / STATE_FILE
    try:
        owner = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if owner == (os.getpid() if pid is None else pid):
        path.unlink(missing_ok=True)
        (data_dir / SECRETS_FILE).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- reading


def read_state(data_dir: Path, *, secrets: bool = True) -> StackState | None:
    """The live stack's state from ``data_dir``; None when there is no state file.

    Raises ``StaleState`` for a file whose ``sep up`` is gone (or that cannot be read as
    one), and (with ``secrets``) ``UserError`` when a password the stack uses is in a file
    we cannot read.
    """
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
        pid, started = int(raw["pid"]), str(raw["started"])
        environment = {str(k): str(v) for k, v in dict(raw["environment"]).items()}
        pid_start = raw.get("pidStart")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StaleState(f"ignoring {path}: not a state file sep up wrote ({exc})") from exc
    if not pid_alive(pid, pid_start):
        raise StaleState(
            f"ignoring {path}: the `sep up` that wrote it (pid {pid}, "
            f"up since {started}) is no longer running"
        )
    if secrets and raw.get("secrets"):
        secrets_path = data_dir / str(raw["secrets"])
        try:
            environment.update(json.loads(secrets_path.read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(
                f"the stack in {data_dir} keeps its passwords in {secrets_path}, "
                f"which cannot be read here ({exc}); set "
                f"{', '.join(v for v, u in environment.items() if '***' in u)} "
                "yourself"
            ) from exc
    return StackState(pid, started, environment, ui=raw.get("ui"), pid_start=pid_start, path=path)


def merge(environ: Mapping[str, str], state: StackState) -> dict[str, str]:
    """The variables to take from ``state``: those ``environ`` does not set. Empty counts
    as not set on both sides, as in ``Settings`` (an empty value is the default)."""
    return {
        var: value for var, value in state.environment.items() if value and not environ.get(var)
    }


def attach(
    environ: MutableMapping[str, str] | None = None, say: Callable[[str], None] | None = None
) -> StackState | None:
    """Point this process at the running ``sep up`` of its data directory, if there is
    one: put the stack's variables that ``environ`` lacks into it and say so (stderr).

    For the commands that talk to a stack; returns the state attached to, or None.
    """
    environ = os.environ if environ is None else environ
    report = say or (lambda line: print(line, file=sys.stderr))
    data_dir = Path(environ.get("SEP_DATA") or ".sep").resolve()
    try:
        state = read_state(data_dir)
    except StaleState as exc:
        report(str(exc))
        return None
    if state is None:
        return None
    taken = merge(environ, state)
    if not taken:
        return None
    environ.update(taken)
    kept = sorted(var for var in state.environment if environ.get(var) and var not in taken)
    from_env = f"; kept from your environment: {', '.join(kept)}" if kept else ""
    report(f"attached to the stack `sep up` runs ({state.describe()}){from_env}")
    return state


def settings_for_stack() -> Settings:
    """``Settings`` for a command that talks to the stack: the environment's, completed
    from a running ``sep up``'s state file."""
    attach()
    return Settings()


def refuse_second_stack(data_dir: Path) -> str | None:
    """Raise ``UserError`` if a ``sep up`` already runs from ``data_dir`` (its embedded
    services keep their data there); a stale state file is only reported."""
    try:
        state = read_state(data_dir, secrets=False)
    except StaleState as exc:
        with contextlib.suppress(OSError):
            (data_dir / STATE_FILE).unlink()
        return f"{exc}; removed it"
    if state is not None:
        raise UserError(
            f"a stack is already running from {data_dir} ({state.describe()}); "
            "use it (`sep status`, `sep worker`, …), stop it, or start this one "
            "with another SEP_DATA"
        )
    return None
