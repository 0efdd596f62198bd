"""The venue's market-data source: ``PoolState`` updates whenever a pool changes on chain.

``PoolWatcher`` polls the node's block number; for each new range of blocks one
``eth_getLogs`` asks which of the venue's pools emitted ``Swap``, ``Mint`` or ``Burn`` (by any
account, not only ours), and only those pools are read again, at the new head. The first
batch is a snapshot of every pool, so a consumer starting cold has the full picture.

    async for states in PoolWatcher(venue).updates():   # list[PoolState], one per changed pool
        for state in states: publish("sep.market.pools", key=state.pool_id, value=state)

A node that cannot be reached is logged and retried with back-off; the watcher carries on
from the last block it reported, so no change is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue
from plugins.uniswap_v3.contracts import BURN_TOPIC, MINT_TOPIC, SWAP_TOPIC
from plugins.uniswap_v3.venue import _CONNECTION_ERRORS, VENUE_NAME, UniswapV3Venue

log = logging.getLogger(__name__)

POOLS_TOPIC = "sep.market.pools"


class PoolWatcher:
    """Yields the states of the venue's pools that changed, block range by block range."""

    def __init__(
        self,
        venue: UniswapV3Venue,
        *,
        poll_interval_s: float = 0.1,
        snapshot: bool = True,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.venue = venue
        self.poll_interval_s = poll_interval_s
        self.snapshot = snapshot
        self.max_backoff_s = max_backoff_s
        self.last_block: int | None = None
        """The last block whose changes were yielded."""
        self._closed = asyncio.Event()

    def close(self) -> None:
        """Stop after the current poll; ``updates`` then ends."""
        self._closed.set()

    async def updates(self) -> AsyncIterator[list[PoolState]]:
        reader = self.venue.reader
        w3 = self.venue.w3
        addresses = {w3.to_checksum_address(p.address): p for p in reader.pools}
        backoff = self.poll_interval_s
        while not self._closed.is_set():
            try:
                head = await w3.eth.block_number
                if self.last_block is None:
                    self.last_block = head
                    if self.snapshot:
                        yield await reader.read(block=head)
                elif head > self.last_block:
                    logs = await w3.eth.get_logs(
                        {
                            "address": list(addresses),
                            "fromBlock": self.last_block + 1,
                            "toBlock": head,
                            "topics": [[SWAP_TOPIC, MINT_TOPIC, BURN_TOPIC]],
                        }
                    )
                    changed = {w3.to_checksum_address(entry["address"]) for entry in logs}
                    if changed:
                        yield await reader.read([addresses[a] for a in sorted(changed)], block=head)
                    self.last_block = head
                backoff = self.poll_interval_s
            except _CONNECTION_ERRORS as exc:
                log.warning(
                    "%s market data: node unreachable (%s); retrying in %.1fs",
                    VENUE_NAME,
                    type(exc).__name__,
                    backoff,
                )
                backoff = min(backoff * 2, self.max_backoff_s)
            with contextlib.suppress(TimeoutError):  # the pause, cut short by close()
                await asyncio.wait_for(self._closed.wait(), timeout=backoff)


def make_pool_watcher(venue: Venue) -> PoolWatcher:
    if not isinstance(venue, UniswapV3Venue):
        raise TypeError(
            f"the uniswap_v3 pool watcher needs a UniswapV3Venue, got {type(venue).__name__}"
        )
    return PoolWatcher(venue)
