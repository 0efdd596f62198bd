"""The dedupe store: the first claim of a key owns it, everywhere, for the TTL; Redis and the
in-memory twin keep the same contract (one suite over both)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from pipeline.store.dedupe import DedupeStore, MemoryDedupeStore, RedisDedupeStore

TTL_S = 60


@dataclass
class Clock:
    ms: int = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


# The "services" marker is added for tests that name a service fixture; this one asks for
# ``redis_url`` only when it runs, so its Redis variant carries the marker itself.
@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.services), "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[DedupeStore]:
    if request.param == "memory":
        yield MemoryDedupeStore(TTL_S, clock=Clock())
        return
    redis_url: str = request.getfixturevalue("redis_url")
    redis_store = RedisDedupeStore.connect(redis_url, f"t-{uuid.uuid4().hex[:8]}:", TTL_S)
    try:
        yield redis_store
    finally:
        await redis_store.close()


async def test_first_claim_wins_and_later_ones_get_its_id(store: DedupeStore) -> None:
    assert await store.claim([("k", "intent-a")]) == ["intent-a"]
    assert await store.claim([("k", "intent-b")]) == ["intent-a"]
    assert await store.claim([("other", "intent-b")]) == ["intent-b"]


async def test_the_owner_claiming_again_gets_its_own_id(store: DedupeStore) -> None:
    # A redelivered record derives the same id: it must be processed again, not dropped.
    await store.claim([("k", "intent-a")])
    assert await store.claim([("k", "intent-a")]) == ["intent-a"]


async def test_a_batch_is_claimed_in_order(store: DedupeStore) -> None:
    owners = await store.claim([("k1", "a"), ("k2", "b"), ("k1", "c"), ("k2", "b"), ("k3", "d")])
    assert owners == ["a", "b", "a", "b", "d"]
    assert await store.claim([]) == []


async def test_release_drops_only_its_own_claim(store: DedupeStore) -> None:
    await store.claim([("k", "intent-a")])
    await store.release("k", "intent-b")  # not the owner: nothing happens
    assert await store.claim([("k", "intent-c")]) == ["intent-a"]
    await store.release("k", "intent-a")
    assert await store.claim([("k", "intent-c")]) == ["intent-c"]


async def test_keys_of_any_characters_are_distinct(store: DedupeStore) -> None:
    keys = ['["a","b"]', '["a", "b"]', "*", "[ab]", "k\x00", "ü", ""]
    owners = await store.claim([(k, f"id-{i}") for i, k in enumerate(keys)])
    assert owners == [f"id-{i}" for i in range(len(keys))]


async def test_memory_claims_expire_after_the_ttl() -> None:
    clock = Clock()
    store = MemoryDedupeStore(TTL_S, clock=clock)
    await store.claim([("k", "a")])
    clock.ms += TTL_S * 1000 - 1
    assert await store.claim([("k", "b")]) == ["a"]
    clock.ms += 1
    assert await store.claim([("k", "b")]) == ["b"]


async def test_redis_keys_live_under_the_prefix_with_the_ttl(redis_url: str) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    store = RedisDedupeStore.connect(redis_url, prefix, TTL_S)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        await store.claim([('["dca","c-1"]', "intent-a")])
        assert await client.get(f'{prefix}dedupe:["dca","c-1"]') == "intent-a"
        assert 0 < await client.ttl(f'{prefix}dedupe:["dca","c-1"]') <= TTL_S
        # A losing claim does not extend the owner's lease.
        await client.expire(f'{prefix}dedupe:["dca","c-1"]', 5)
        await store.claim([('["dca","c-1"]', "intent-b")])
        assert await client.ttl(f'{prefix}dedupe:["dca","c-1"]') <= 5
    finally:
        await client.aclose()
        await store.close()


async def test_redis_claims_a_batch_in_one_command(redis_url: str) -> None:
    store = RedisDedupeStore.connect(redis_url, f"t-{uuid.uuid4().hex[:8]}:", TTL_S)
    client = aioredis.from_url(redis_url)
    try:
        await store.claim([("warm-up", "x")])  # loads the script once

        async def scripts_run() -> int:
            stats = await client.info("commandstats")
            return sum(
                int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval")
            )

        before = await scripts_run()
        owners = await store.claim([(f"k{i}", f"id-{i}") for i in range(500)])
        assert await scripts_run() - before == 1
        assert owners == [f"id-{i}" for i in range(500)]
    finally:
        await client.aclose()
        await store.close()


async def test_a_client_shared_with_decoded_responses_works(redis_url: str) -> None:
    # The UI passes its own client (decode_responses=True); the store must not care.
    client = aioredis.from_url(redis_url, decode_responses=True)
    store = RedisDedupeStore(client, f"t-{uuid.uuid4().hex[:8]}:", TTL_S)
    try:
        assert await store.claim([("k", "a"), ("k", "b")]) == ["a", "a"]
        await store.close()  # not its client: still open
        assert await client.ping()
    finally:
        await client.aclose()


def test_a_ttl_under_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 s"):
        RedisDedupeStore(aioredis.Redis(), "", 0.5)
