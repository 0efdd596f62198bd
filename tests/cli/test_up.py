"""``sep up``'s supervision: a worker that keeps crashing ends it with status 1, the rest
is stopped; otherwise it keeps going until told to stop. Real child processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from pipeline.cli.up import watch_workers
from pipeline.config import Settings
from pipeline.harness import WorkerPool
from pipeline.supervisor import RestartPolicy, Supervisor

FAST = RestartPolicy(first_delay_s=0.05, max_delay_s=0.1, max_crashes=2, window_s=60.0)
# Crashes at once as slot "crasher", sleeps as any other (the pool passes --stages NAME).
CHILD = "import sys, time\nif sys.argv[-1] == 'crasher':\n    sys.exit(1)\ntime.sleep(120)\n"


def pool(data_dir: Path, *layout: str) -> WorkerPool:
    workers = WorkerPool(
        Settings(data_dir=data_dir), layout=layout, command=(sys.executable, "-c", CHILD)
    )
    workers.start()
    return workers


async def test_gives_up_with_status_1_and_stops_the_rest(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workers = pool(data_dir, "sleeper", "crasher")
    stop = asyncio.Event()
    try:
        supervisor = Supervisor(workers, FAST, say=lambda _line: None)
        assert await asyncio.wait_for(watch_workers(supervisor, stop), timeout=20) == 1
        assert stop.is_set()  # the UI, the status loop and `sep up` itself wind down
        assert supervisor.restarts == 2
        assert workers.procs[0].poll() is None  # stopped by `sep up`, not by the supervisor
    finally:
        workers.stop(timeout=5)
    err = capsys.readouterr().err
    assert (
        "sep up: worker-1 exited with status 1; gave up restarting it: 3 crashes within "
        "60s (more than SEP_RESTART_MAX_CRASHES=2); stopping everything" in err
    )


async def test_runs_until_stopped_and_then_says_0(data_dir: Path) -> None:
    workers = pool(data_dir, "sleeper")
    stop = asyncio.Event()
    try:
        watching = asyncio.create_task(
            watch_workers(Supervisor(workers, FAST, say=lambda _line: None), stop)
        )
        await asyncio.sleep(0.3)
        assert not watching.done()
        stop.set()
        assert await asyncio.wait_for(watching, timeout=5) == 0
        assert workers.alive()
    finally:
        workers.stop(timeout=5)


def test_help_offers_the_modes(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli.main import main

    with pytest.raises(SystemExit):
        main(["up", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--mode {live,paper}" in out
    assert "paper fills each intent on a paper twin of each chain venue" in out


def test_the_mode_reaches_every_process_of_the_stack(tmp_path: Path) -> None:
    """Workers get it in their environment, and `sep status` through stack.json."""
    from pipeline.cli.stackfile import stack_environment
    from pipeline.harness import service_env

    settings = Settings(data_dir=tmp_path, mode="paper")
    assert service_env(settings)["SEP_MODE"] == "paper"
    assert stack_environment(settings)["SEP_MODE"] == "paper"
    assert "SEP_MODE" not in stack_environment(Settings(data_dir=tmp_path, mode=""))
