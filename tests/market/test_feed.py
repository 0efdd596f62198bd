"""The pool feed against the real broker: catch up on start, then follow the tail."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.market.feed import PoolFeed, pool_key, pool_value
from pipeline.models.market import PoolState
from tests.kafka_support import COMPACTED, new_topic

pytestmark = pytest.mark.services


def _state(pool: str, reserve0: int, venue: str = "sim") -> PoolState:
    return PoolState(
        pool_id=pool,
        venue=venue,
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=reserve0,
        reserve1=reserve0 * 3000,
        fee=3000,
    )


async def _topic(bootstrap: str) -> str:
    return await new_topic(bootstrap, "test.pools", 1, COMPACTED)


async def _publish(bootstrap: str, topic: str, *values: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_feed_starts_with_the_latest_state_per_pool(kafka_bootstrap: str) -> None:
    topic = await _topic(kafka_bootstrap)
    older, newer, other = _state("a", 10), _state("a", 11), _state("b", 5, venue="uniswap_v3")
    states = (older, newer, other)
    await _publish(kafka_bootstrap, topic, *((pool_key(s), pool_value(s)) for s in states))
    feed = PoolFeed(kafka_bootstrap, topic)
    await feed.start()
    try:
        pools = feed.pools()
        assert pools == {"sim": [newer], "uniswap_v3": [other]}
    finally:
        await feed.stop()


async def test_feed_follows_new_states_and_skips_garbage(kafka_bootstrap: str) -> None:
    topic = await _topic(kafka_bootstrap)
    feed = PoolFeed(kafka_bootstrap, topic)
    await feed.start()  # an empty topic: caught up at once
    try:
        assert feed.pools() == {}
        seen = feed.updates
        await _publish(
            kafka_bootstrap,
            topic,
            (b"sim/x", b"{not json"),
            (pool_key(_state("x", 7)), pool_value(_state("x", 7))),
        )
        await feed.wait_for_update(seen, timeout_s=10)
        assert feed.pools() == {"sim": [_state("x", 7)]}
        assert feed.updates == seen + 1  # the unreadable record was not applied
    finally:
        await feed.stop()
