"""The event-loop lag probe: percentiles of its window, and a blocked loop seen as lag."""

from __future__ import annotations

import asyncio
import contextlib
import time

from pipeline.runtime.loop_lag import LoopLag


def test_percentiles_of_the_window_and_zeros_before_any_sample() -> None:
    lag = LoopLag(window=100)
    assert lag.percentiles() == {"p50": 0.0, "p99": 0.0, "max": 0.0}
    for ms in range(200):  # the window keeps the last 100: 100..199
        lag.record(float(ms))
    assert lag.percentiles() == {"p50": 150.0, "p99": 199.0, "max": 199.0}


async def test_a_loop_blocked_for_200_ms_shows_a_lag_of_about_that() -> None:
    lag = LoopLag(interval_s=0.005)
    probe = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 - the point: a pass that never yields
        await asyncio.sleep(0.05)
        # At least the block (the wake-up was due during it); the upper bound only says
        # the probe measures milliseconds, not seconds (a loaded machine adds a little).
        assert 180 <= lag.percentiles()["max"] < 5000
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
