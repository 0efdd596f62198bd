"""A worker whose harness is gone stops itself: the rule with a fake parent, and a real
grandchild outliving its parent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from pipeline.runtime.orphan import PARENT_ENV, expected_parent, watch_parent


def test_the_expected_parent_comes_from_the_environment_when_a_harness_set_it() -> None:
    assert expected_parent({PARENT_ENV: "4242"}) == 4242
    assert expected_parent({}) is None
    assert expected_parent({PARENT_ENV: "not a pid"}) is None


async def test_the_watch_stops_once_the_parent_changes_and_not_before() -> None:
    parents = iter([10, 10, 10, 1])
    stopped: list[int] = []
    await watch_parent(10, 0.001, getppid=lambda: next(parents), stop=lambda: stopped.append(1))
    assert stopped == [1]
    assert next(parents, None) is None  # it looked until the change, then stopped looking


def test_a_grandchild_stops_when_its_parent_dies() -> None:
    # The parent starts a child that watches it, prints the child's pid and exits at once.
    child = textwrap.dedent(
        """
        import asyncio, os
        from pipeline.runtime.orphan import watch_parent
        asyncio.run(watch_parent(int(os.environ["SEP_PARENT_PID"]), 0.05))
        """
    )
    parent = textwrap.dedent(
        f"""
        import os, subprocess, sys
        env = dict(os.environ, SEP_PARENT_PID=str(os.getpid()))
        proc = subprocess.Popen([sys.executable, "-c", {child!r}], env=env,
                                start_new_session=True)
        print(proc.pid, flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, check=True, timeout=60
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # gone: it stopped itself (SIGTERM, no handler in this child)
        time.sleep(0.05)
    os.kill(pid, 9)
    raise AssertionError("the orphaned grandchild did not stop")
