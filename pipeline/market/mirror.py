"""Paper mode: the paper twins' pools follow the live venues' pool states on the market topic.

    sep.market.pools --PoolFeed (every planning worker)--> latest state + offset per pool
      --MarketMirror, on each update--> twin.set_market([(state, offset), ...])
                                        for the states under the twin's name it has not
                                        handed over yet

Each worker runs one mirror; the twins' ledger (shared by the workers) takes a state only
if its offset is above the pool's last one (``PaperTwin.set_market``), so a state handed
over by two workers is taken once and our paper fills made in between stand until the
pool's next market state.  A mirror that lags hands over only the latest state of a pool:
the states it skipped are the past.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from pipeline.market.feed import PoolFeed
from pipeline.plugins.venue import PaperTwin

log = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0
RETRY_S = 0.5


class MarketMirror:
    """Hands the market's pool states to the paper twins, as they arrive on ``feed``."""

    def __init__(self, feed: PoolFeed, twins: Mapping[str, PaperTwin]) -> None:
        self._feed = feed
        self._twins = dict(twins)
        self._handed: dict[str, dict[str, int]] = {name: {} for name in twins}
        """twin -> pool id -> the offset of the last state handed over."""
        self._task: asyncio.Task[None] | None = None
        self.taken = 0
        """States the twins' ledger took from this mirror (tests watch it)."""

    async def sync(self) -> int:
        """Hand over every state not handed over yet; how many the ledger took."""
        taken = 0
        for name, twin in self._twins.items():
            handed = self._handed[name]
            fresh = [
                (s, mark) for s, mark in self._feed.marked(name) if handed.get(s.pool_id, -1) < mark
            ]
            if not fresh:
                continue
            taken += await twin.set_market(fresh)
            for state, mark in fresh:
                handed[state.pool_id] = mark
        self.taken += taken
        return taken

    async def start(self) -> None:
        """The states the feed has caught up on first (the first plan sees the market),
        then follow it in the background."""
        await self.sync()
        self._task = asyncio.create_task(self._follow(), name="paper-mirror")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        seen = self._feed.updates
        while True:
            with contextlib.suppress(TimeoutError):
                seen = await self._feed.wait_for_update(seen, IDLE_WAIT_S)
            try:
                await self.sync()
            except Exception:  # a busy ledger: the next update (or the idle wait) retries
                log.exception("paper mirror: pool states not taken; retrying")
                await asyncio.sleep(RETRY_S)
