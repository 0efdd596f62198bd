"""Restart crashed worker processes with backoff; give up on one that keeps crashing.

One dead worker must not stop the platform (its partitions move to the others, and a
restarted worker rejoins the group in about a second), but a worker that crashes again and
again (a poison record, a bad configuration) must end ``sep up`` with a non-zero status
instead of restarting for ever.

The policy is a pure function of one worker's crash history (``decide``), so backoff and
give-up are tested without processes; ``Supervisor`` applies it to a pool of processes
(``WorkerPool``), polled from ``sep up``'s event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.config import Settings


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    """Wait before the first restart of a streak; doubled for each further crash."""
    max_delay_s: float = 30.0
    healthy_after_s: float = 60.0
    """A run at least this long ends a streak: its crash is restarted after ``first_delay_s``
    again (a worker that ran for an hour and then crashed is not a crash loop)."""
    max_crashes: int = 5
    """Give up when one worker crashed more than this many times ..."""
    window_s: float = 300.0
    """... within this many seconds."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartPolicy:
        return cls(max_crashes=settings.restart_max_crashes, window_s=settings.restart_window_s)


@dataclass(frozen=True)
class Crash:
    """One run of a worker that ended: monotonic seconds it started and its exit was seen."""

    started: float
    ended: float


@dataclass(frozen=True)
class Restart:
    delay_s: float
    streak: int
    """Crashes in a row without a healthy run between them, this one included."""


@dataclass(frozen=True)
class GiveUp:
    reason: str


def decide(policy: RestartPolicy, crashes: Sequence[Crash]) -> Restart | GiveUp:
    """What to do about the latest of ``crashes`` (one worker's, oldest first)."""
    now = crashes[-1].ended
    recent = sum(1 for crash in crashes if crash.ended > now - policy.window_s)
    if recent > policy.max_crashes:
        return GiveUp(
            f"{recent} crashes within {policy.window_s:g}s "
            f"(more than SEP_RESTART_MAX_CRASHES={policy.max_crashes})"
        )
    streak = 0
    for crash in reversed(crashes):
        streak += 1
        if crash.ended - crash.started >= policy.healthy_after_s:
            break
    # 2 ** streak overflows a float long after the cap applies; stop doubling there.
    delay = policy.first_delay_s * 2.0 ** min(streak - 1, 32)
    return Restart(min(policy.max_delay_s, delay), streak)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def log_tail(path: Path, lines: int = 12, width: int = 400) -> str:
    """The last ``lines`` lines of ``path`` (each cut at ``width`` characters), read from
    its end: a worker's log grows without bound."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"    (log unreadable: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"    {line[:width]}{'…' if len(line) > width else ''}" for line in tail)


class Supervised(Protocol):
    """The pool of processes a ``Supervisor`` watches (``WorkerPool`` is one)."""

    procs: list[subprocess.Popen[bytes]]

    def respawn(self, slot: int) -> subprocess.Popen[bytes]: ...

    def slot_name(self, slot: int) -> str: ...

    def log_file(self, slot: int) -> Path: ...


class WorkerGaveUp(Exception):
    """A worker crashed too often; the supervisor stopped restarting it."""

    def __init__(self, name: str, returncode: int, reason: str) -> None:
        super().__init__(f"{name} {describe_exit(returncode)}; gave up restarting it: {reason}")
        self.name = name
        self.returncode = returncode
        self.reason = reason


@dataclass
class _Slot:
    started: float
    crashes: list[Crash] = field(default_factory=list)
    restart_at: float | None = None
    """When a restart is due; ``None`` while the process runs (or is not yet seen dead)."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Supervisor:
    """Restarts ``pool``'s processes as they exit, by ``policy``; call ``check`` often.

    Every exit counts, status 0 included: under supervision a worker only stops when told
    to, and ``sep up`` stops the supervisor before it stops the workers.
    """

    def __init__(
        self,
        pool: Supervised,
        policy: RestartPolicy,
        *,
        say: Callable[[str], None] = _say,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.policy = policy
        self.say = say
        self.clock = clock
        now = clock()
        self.slots = [_Slot(started=now) for _ in pool.procs]
        self.restarts = 0

    def check(self) -> None:
        """Notice exits and restart the processes that are due; raise ``WorkerGaveUp``."""
        now = self.clock()
        for i, slot in enumerate(self.slots):
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    proc = self.pool.respawn(i)
                    slot.started, slot.restart_at = now, None
                    self.restarts += 1
                    self.say(f"{self.pool.slot_name(i)}: restarted (pid {proc.pid})")
                continue
            proc = self.pool.procs[i]
            code = proc.poll()
            if code is None:
                continue
            # Only what decide() can still use: the window's crashes, and a streak whose
            # delay is capped long before 64.
            keep = max(64, self.policy.max_crashes + 1)
            slot.crashes = [*slot.crashes, Crash(slot.started, now)][-keep:]
            decision = decide(self.policy, slot.crashes)
            name = self.pool.slot_name(i)
            what = f"{name} (pid {proc.pid}) {describe_exit(code)} after {now - slot.started:.1f}s"
            tail = f"last lines of {self.pool.log_file(i)}:\n{log_tail(self.pool.log_file(i))}"
            if isinstance(decision, GiveUp):
                self.say(f"{what}; giving up: {decision.reason}\n{tail}")
                raise WorkerGaveUp(name, code, decision.reason)
            self.say(
                f"{what}; restarting it in {decision.delay_s:g}s "
                f"(crash {decision.streak} in a row)\n{tail}"
            )
            slot.restart_at = now + decision.delay_s

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        """``check`` every ``interval`` seconds until ``stop`` is set (or it gives up)."""
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
