"""The restart policy as a pure function, then the supervisor over real child processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.harness import WorkerPool
from pipeline.supervisor import (
    Crash,
    GiveUp,
    Restart,
    RestartPolicy,
    Supervisor,
    WorkerGaveUp,
    decide,
    describe_exit,
    log_tail,
)

POLICY = RestartPolicy()  # 1 s doubling to 30 s, healthy after 60 s, > 5 crashes in 300 s


def quick_crashes(count: int, every: float = 10.0, ran: float = 2.0) -> list[Crash]:
    return [Crash(i * every, i * every + ran) for i in range(count)]


# ----------------------------------------------------------------------------- the policy


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    roomy = RestartPolicy(max_crashes=100)
    delays = [decide(roomy, quick_crashes(n)) for n in range(1, 9)]
    assert delays == [
        Restart(1.0, 1),
        Restart(2.0, 2),
        Restart(4.0, 3),
        Restart(8.0, 4),
        Restart(16.0, 5),
        Restart(30.0, 6),
        Restart(30.0, 7),
        Restart(30.0, 8),
    ]


def test_a_long_healthy_run_starts_a_new_streak() -> None:
    roomy = RestartPolicy(max_crashes=100)
    crashes = [*quick_crashes(4), Crash(100.0, 100.0 + 60.0)]
    assert decide(roomy, crashes) == Restart(1.0, 1)
    assert decide(roomy, [*crashes, Crash(161.0, 162.0)]) == Restart(2.0, 2)
    # Just short of healthy: the streak goes on.
    assert decide(roomy, [*quick_crashes(4), Crash(100.0, 159.9)]) == Restart(16.0, 5)


def test_gives_up_after_more_than_max_crashes_within_the_window() -> None:
    assert isinstance(decide(POLICY, quick_crashes(5, every=50.0)), Restart)  # 5 in 202 s
    decision = decide(POLICY, quick_crashes(6, every=50.0))  # the 6th within 300 s
    assert isinstance(decision, GiveUp)
    assert decision.reason == "6 crashes within 300s (more than SEP_RESTART_MAX_CRASHES=5)"


def test_crashes_older_than_the_window_are_forgiven() -> None:
    # Six crashes, but a minute apart: never more than five within any 300 s.
    decision = decide(POLICY, quick_crashes(6, every=61.0))
    assert isinstance(decision, Restart)
    assert decision.delay_s == 30.0  # still one streak (each ran 2 s)
    assert isinstance(decide(POLICY, quick_crashes(12, every=61.0)), Restart)


def test_the_policy_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEP_RESTART_MAX_CRASHES", "2")
    monkeypatch.setenv("SEP_RESTART_WINDOW_S", "30")
    policy = RestartPolicy.from_settings(Settings())
    assert (policy.max_crashes, policy.window_s) == (2, 30.0)
    assert isinstance(decide(policy, quick_crashes(3, every=5.0)), GiveUp)
    assert isinstance(decide(policy, quick_crashes(3, every=20.0)), Restart)
    monkeypatch.delenv("SEP_RESTART_MAX_CRASHES")
    monkeypatch.delenv("SEP_RESTART_WINDOW_S")
    assert RestartPolicy.from_settings(Settings()) == RestartPolicy()


def test_exits_are_described_as_a_person_reads_them() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-15) == "was killed by SIGTERM"


def test_log_tail_is_the_end_of_the_file_cut_to_width(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)) + "x" * 1000 + "\n")
    tail = log_tail(log, lines=3, width=50).splitlines()
    assert tail == ["    line 99998", "    line 99999", "    " + "x" * 50 + "…"]
    assert "log unreadable" in log_tail(tmp_path / "missing.log")


# ----------------------------------------------------------------------------- real children

# A child that crashes unless it runs as the "sleeper" slot (the pool passes --stages NAME).
CHILD = (
    "import sys, time\n"
    "if sys.argv[-1] == 'sleeper':\n"
    "    time.sleep(120)\n"
    "print('boom: cannot start', flush=True)\n"
    "sys.exit(3)\n"
)
FAST = RestartPolicy(
    first_delay_s=0.1, max_delay_s=0.4, healthy_after_s=60.0, max_crashes=3, window_s=60.0
)


def _pool(tmp_path: Path, layout: tuple[str, ...]) -> WorkerPool:
    pool = WorkerPool(
        Settings(data_dir=tmp_path), layout=layout, command=(sys.executable, "-c", CHILD)
    )
    pool.start()
    return pool


def _check_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        supervisor.check()
        time.sleep(0.02)


def test_restarts_a_crashing_child_with_backoff_then_gives_up(tmp_path: Path) -> None:
    pool = _pool(tmp_path, ("crasher", "sleeper"))
    sleeper = pool.procs[1].pid
    said: list[str] = []
    supervisor = Supervisor(pool, FAST, say=said.append)
    try:
        with pytest.raises(WorkerGaveUp) as gave_up:
            _check_until(supervisor, lambda: False)
        assert gave_up.value.name == "worker-0"
        assert gave_up.value.returncode == 3
        assert "4 crashes within 60s" in str(gave_up.value)
        assert supervisor.restarts == 3
        # Each restart waited its backoff: 0.1, 0.2, 0.4 s.
        crashes = supervisor.slots[0].crashes
        waits = [b.started - a.ended for a, b in pairwise(crashes)]
        assert len(waits) == 3
        assert all(w >= d for w, d in zip(waits, (0.1, 0.2, 0.4), strict=True)), waits
        # The rest keeps running, untouched.
        assert pool.procs[1].poll() is None
        assert pool.procs[1].pid == sleeper
        assert supervisor.slots[1].crashes == []
    finally:
        pool.stop(timeout=5)
    first = said[0]
    assert first.startswith("worker-0 (pid ")
    assert "exited with status 3 after" in first
    assert "restarting it in 0.1s (crash 1 in a row)" in first
    assert f"last lines of {tmp_path / 'logs' / 'worker-0.log'}" in first
    assert "boom: cannot start" in first
    assert said[1].startswith("worker-0: restarted (pid ")
    assert "giving up: 4 crashes within 60s" in said[-1]
    log = (tmp_path / "logs" / "worker-0.log").read_text()
    assert log.count("boom: cannot start") == 4
    assert log.count("restarted ---") == 3


def test_a_killed_child_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    pool = _pool(tmp_path, ("sleeper", "sleeper"))
    said: list[str] = []
    supervisor = Supervisor(pool, FAST, say=said.append)
    try:
        killed, other = pool.procs[0].pid, pool.procs[1].pid
        os.kill(killed, signal.SIGKILL)
        _check_until(supervisor, lambda: supervisor.restarts == 1)
        assert pool.procs[0].pid != killed
        assert pool.procs[0].poll() is None
        assert pool.procs[1].pid == other
        assert pool.alive()
        assert f"worker-0 (pid {killed}) was killed by SIGKILL" in said[0]
        # Another crash of the same worker, and it is restarted again (twice the wait).
        os.kill(pool.procs[0].pid, signal.SIGKILL)
        _check_until(supervisor, lambda: supervisor.restarts == 2)
        assert "restarting it in 0.2s (crash 2 in a row)" in said[2]
    finally:
        codes = pool.stop(timeout=5)
    assert codes == [-signal.SIGTERM, -signal.SIGTERM]


def test_respawn_refuses_a_running_process(tmp_path: Path) -> None:
    pool = _pool(tmp_path, ("sleeper",))
    try:
        with pytest.raises(RuntimeError, match="worker-0 still runs"):
            pool.respawn(0)
    finally:
        pool.stop(timeout=5)
