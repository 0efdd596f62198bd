"""The paper mirror against the real broker: pool states published under a live venue's name
move its paper twin's pools; two workers' mirrors take each state once; our fills stand
until the pool's next state; other venues' states are left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.market.feed import PoolFeed, pool_key, pool_value
from pipeline.market.mirror import MarketMirror
from pipeline.models.assets import Asset
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import VenueContext
from plugins.sim_venue import PaperTwinVenue, make_paper_twin
from tests.kafka_support import COMPACTED, new_topic

pytestmark = pytest.mark.services

NAME = "uniswap_v3"
WETH, USDC = 10**18, 10**6
ASSETS = {
    "WETH": Asset(symbol="WETH", address="0x" + "11" * 20, decimals=18, chain_id=1),
    "USDC": Asset(symbol="USDC", address="0x" + "22" * 20, decimals=6, chain_id=1),
}


def _state(weth: int, usdc: int, venue: str = NAME, pool: str = "uni-weth-usdc-5") -> PoolState:
    return PoolState(
        pool_id=pool,
        venue=venue,
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=weth * WETH,
        reserve1=usdc * USDC,
        fee=500,
    )


class _Live:
    name = NAME

    async def stop(self) -> None:
        return None


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    return await new_topic(kafka_bootstrap, "test.mirror", 1, COMPACTED)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def _publish(producer: AIOKafkaProducer, topic: str, *states: PoolState) -> None:
    for state in states:
        await producer.send_and_wait(topic, pool_value(state), key=pool_key(state))


class _Worker:
    """What one paper worker runs of this: a pool feed, its twin (shared ledger), a mirror."""

    def __init__(self, bootstrap: str, topic: str, data_dir: Path) -> None:
        context = VenueContext(data_dir=data_dir, assets=ASSETS, read_only=True)
        self.twin: PaperTwinVenue = make_paper_twin(NAME, _Live(), context)  # type: ignore[arg-type]
        self.feed = PoolFeed(bootstrap, topic)
        self.mirror = MarketMirror(self.feed, {NAME: self.twin})

    async def start(self) -> None:
        await self.feed.start()
        await self.twin.start()
        await self.mirror.start()

    async def stop(self) -> None:
        await self.mirror.stop()
        await self.twin.stop()
        await self.feed.stop()

    async def reserve0(self) -> int:
        (pool,) = await self.twin.pools()
        return pool.reserve0


async def _until(worker: _Worker, reserve0: int, within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if await worker.reserve0() == reserve0:
                return
            await asyncio.sleep(0.02)  # the other worker's mirror may be the one that writes


def _sell(weth: str, step_id: str) -> ExecutionStep:
    leg = RouteLeg(
        pool_id="uni-weth-usdc-5",
        venue=NAME,
        token_in="WETH",
        token_out="USDC",
        amount_in=0,
        amount_out=0,
    )
    amount = Decimal(weth)
    return ExecutionStep(
        step_id=step_id,
        venue=NAME,
        mode=SwapMode.EXACT_IN,
        legs=(leg,),
        asset_in="WETH",
        asset_out="USDC",
        amount_in=amount,
        min_out=Decimal(0),
        amount_out=Decimal(0),
        max_in=amount,
    )


async def test_two_workers_mirror_the_market_and_our_fills_last_until_the_next_state(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    # Published before the workers start: the feed catches up and the twin starts there.
    await _publish(producer, topic, _state(1_000, 3_000_000), _state(5, 15_000, venue="sim"))
    one = _Worker(kafka_bootstrap, topic, tmp_path)
    two = _Worker(kafka_bootstrap, topic, tmp_path)
    await one.start()
    await two.start()
    try:
        assert await one.reserve0() == 1_000 * WETH
        assert [p.pool_id for p in await one.twin.pools()] == ["uni-weth-usdc-5"]  # not sim's

        # The market moves: both workers' twins (one ledger) follow within a tick.
        await _publish(producer, topic, _state(990, 3_030_000))
        await _until(one, 990 * WETH)
        await _until(two, 990 * WETH)

        # Our paper sale moves the pool; the mirrors hand over nothing older, so it stands...
        fill = await one.twin.wait_receipt(await one.twin.submit(_sell("10", "s1")), 5)
        assert fill.amount_out > 0
        assert await two.reserve0() == 1_000 * WETH
        await asyncio.sleep(1.5)  # past a mirror's idle wait: both re-synced, nothing new
        assert await one.reserve0() == 1_000 * WETH
        # ...until the pool's next market state, which replaces it.
        await _publish(producer, topic, _state(980, 3_060_000))
        await _until(two, 980 * WETH)

        # Each state was taken once, whichever worker's mirror handed it over first.
        assert one.mirror.taken + two.mirror.taken == 3
    finally:
        await two.stop()
        await one.stop()
