"""Stop the workers mid-stream, gracefully and with kill -9, and start them again.

Nothing may be lost, nothing executed twice (the sim venue's own ledger counts fills), and
every intent's events must still be in order.  Against the real broker: restarts are where
faust's offset handling and our idempotence have to hold.  (The split layout's own:
``test_split_layout_e2e``.)
"""

from __future__ import annotations

import time

import asyncpg

from pipeline.config import Settings
from pipeline.harness import WorkerPool
from tests.e2e.checks import dead_letter_end
from tests.e2e.interruptions import STOP_BOUND_S, assert_exactly_once, interrupt_mid_stream


async def test_graceful_restart_mid_stream_loses_nothing(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    """SIGTERM under load: the workers drain and exit within the bound, cleanly, and the
    stop dead-letters nothing (it used to close stores under running stages)."""
    codes: list[int | None] = []
    took: list[float] = []

    def stop() -> None:
        started = time.monotonic()
        codes.extend(workers.stop(timeout=STOP_BOUND_S + 5))
        took.append(time.monotonic() - started)

    dead_letters_before = await dead_letter_end(prepared)
    ids = await interrupt_mid_stream(workers, prepared, stop)
    assert codes, "no worker was stopped"
    assert codes == [0] * len(codes), f"exit statuses {codes}"
    assert took[0] < STOP_BOUND_S, f"the stop took {took[0]:.1f}s"
    await assert_exactly_once(prepared, db, ids, workers)
    assert await dead_letter_end(prepared) == dead_letters_before


async def test_kill_9_mid_stream_loses_nothing_and_fills_once(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    ids = await interrupt_mid_stream(workers, prepared, workers.kill)
    await assert_exactly_once(prepared, db, ids, workers)
