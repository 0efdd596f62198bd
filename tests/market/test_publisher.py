"""The market publisher in paper mode: a paper twin's market data is its live venue's (started
by the publisher, retried while it cannot start), and the planner asks the twin for its pools
rather than routing on the published states."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from pipeline.market.publisher import MarketPublisher
from pipeline.models.assets import Asset
from pipeline.models.market import PoolState
from pipeline.plugins.market import MarketRecord, MarketSource, MarketSourceSpec
from pipeline.plugins.venue import Venue, VenueContext
from plugins.sim_venue import make_paper_twin

STATE = PoolState(
    pool_id="p", venue="chain", chain_id=1, token0="WETH", token1="USDC",
    reserve0=10**21, reserve1=3 * 10**9, fee=500,
)  # fmt: skip
ASSETS = {
    "WETH": Asset(symbol="WETH", address="0x" + "11" * 20, decimals=18, chain_id=1),
    "USDC": Asset(symbol="USDC", address="0x" + "22" * 20, decimals=6, chain_id=1),
}


class Live:
    """A live venue whose node is down for its first ``failures`` starts."""

    name = "chain"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise ConnectionError("node down")

    async def stop(self) -> None:
        return None


class OneBatch:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    async def updates(self) -> AsyncIterator[Sequence[PoolState | MarketRecord]]:
        yield [STATE]

    def close(self) -> None:
        return None


async def test_a_twins_market_source_reads_its_live_venue_once_started(tmp_path: Path) -> None:
    live = Live(failures=1)
    twin = make_paper_twin("chain", live, VenueContext(data_dir=tmp_path, assets=ASSETS))  # type: ignore[arg-type]
    made: list[Venue] = []

    def factory(venue: Venue) -> MarketSource:
        made.append(venue)
        return OneBatch(venue)

    spec = MarketSourceSpec(name="chain.pools", venue="chain", topic="pools", factory=factory)
    sent: list[tuple[str, bytes, bytes]] = []
    published = asyncio.Event()

    async def send(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))
        published.set()

    publisher = MarketPublisher([spec], {"chain": twin}, send)
    assert publisher.venues == set()  # the planner asks the twin (its ledger has our fills)
    publisher.start()
    try:
        await asyncio.wait_for(published.wait(), 10)
    finally:
        await publisher.stop()
    assert made == [live]  # the source is the live venue's, not the twin's
    assert live.starts == 2  # a start that failed was retried
    assert [(t, k) for t, k, _ in sent] == [("pools", b"chain/p")]


def test_a_live_venues_published_states_are_routed_on_outside_paper_mode() -> None:
    spec = MarketSourceSpec(name="chain.pools", venue="chain", topic="pools", factory=OneBatch)

    async def send(topic: str, key: bytes, value: bytes) -> None:
        return None

    publisher = MarketPublisher([spec], {"chain": Live(0)}, send)  # type: ignore[dict-item]
    assert publisher.venues == {"chain"}
