"""The simulated clock of a backtest: the data's event time, never the wall clock.

Every stage's ``StageContext.clock``, the in-memory topics' record timestamps, the dedupe
store and the sim venue read this one object, so a run's every timestamp comes from the data
and two runs over the same data are the same run.  It only moves forward: a market event
moves it to the event's time, and a receipt that waits for the sim venue's latency moves it
to the receipt's due time (``pipeline.backtest.driver``).
"""

from __future__ import annotations


class SimClock:
    """``clock()`` is the simulated now, in milliseconds since the epoch."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def __call__(self) -> int:
        return self._now

    def ms(self) -> float:
        """The same instant as a float (the sim venue's clock type)."""
        return float(self._now)

    def advance_to(self, at_ms: float) -> None:
        """Move to ``at_ms`` (rounded up to a whole millisecond); an earlier time is a no-op:
        time never runs backwards, even when an event in the data is older than a receipt
        the clock already waited for."""
        whole = int(at_ms) if at_ms == int(at_ms) else int(at_ms) + 1
        if whole > self._now:
            self._now = whole
