"""How late the worker's event loop runs what is due: its lag, sampled.

Every stage group, the fetch loop, the followers and the acknowledgements share one event
loop, and a pass is not preemptible: a record that arrives during a 50 ms pass waits for it.
The probe sleeps ``interval_s`` and records how much later than asked it woke up; the
percentiles over the last ``window`` samples say how long anything due waited for the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

log = logging.getLogger(__name__)

INTERVAL_S = 0.02
"""50 wake-ups a second: ~0.1 % of a core, and fine enough for lags that matter (> 20 ms)."""
WINDOW = 500
"""Samples kept: ~10 s at the interval (less time under load: a late wake-up is one sample)."""


class LoopLag:
    def __init__(self, interval_s: float = INTERVAL_S, window: int = WINDOW) -> None:
        self.interval_s = interval_s
        self._samples: collections.deque[float] = collections.deque(maxlen=window)
        self.max_ms = 0.0

    def record(self, lag_ms: float) -> None:
        self._samples.append(lag_ms)
        self.max_ms = max(self.max_ms, lag_ms)

    def percentiles(self) -> dict[str, float]:
        """p50, p99 and max (ms) of the window; zeros before the first sample."""
        ordered = sorted(self._samples)
        if not ordered:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

        return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 1)}

    async def run(self, report_every_s: float | None = None) -> None:
        """Sample for ever; log the percentiles every ``report_every_s`` (None: never)."""
        next_report = time.monotonic() + (report_every_s or 0)
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval_s)
            woke = time.monotonic()
            self.record(max(0.0, (woke - asked - self.interval_s) * 1000))
            if report_every_s is not None and woke >= next_report:
                log.info("loop lag", extra={"lagMs": self.percentiles()})
                self._samples.clear()
                next_report = woke + report_every_s
