"""Workers' health reports in Redis: read back by the registry of ids (no keyspace scan),
an expired report dropped from it."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from pipeline.store import worker_health


async def test_reports_are_read_from_the_registry_and_expired_ones_dropped(redis_url: str) -> None:
    prefix = f"wh-{uuid.uuid4().hex[:6]}:"
    client = aioredis.from_url(redis_url)
    try:
        assert await worker_health.read_all(client, prefix) == {}
        await worker_health.publish(client, prefix, "w1", {"groups": {}})
        await worker_health.publish(client, prefix, "w2", {"groups": {"ingest": {"ok": True}}})
        # Plenty of other keys under the prefix: they are never looked at.
        await client.mset({f"{prefix}intent:{i}": "x" for i in range(500)})
        reports = await worker_health.read_all(client, prefix)
        assert reports == {"w1": {"groups": {}}, "w2": {"groups": {"ingest": {"ok": True}}}}
        await client.delete(worker_health.key_of(prefix, "w1"))  # as if its TTL ran out
        assert set(await worker_health.read_all(client, prefix)) == {"w2"}
        assert await client.smembers(worker_health.registry_of(prefix)) == {b"w2"}
    finally:
        await client.aclose()


def test_the_lanes_of_every_worker_add_up() -> None:
    lane = {"queued": 3, "behind": 10, "records": 100, "waitMsSum": 500.0, "waitMsMax": 40.0}
    reports = {
        "w1": {"groups": {"validate+plan": {"lanes": {"t.fast": lane | {"paused": False}}}}},
        "w2": {
            "groups": {
                "ingest": {},
                "validate+plan": {"lanes": {"t.fast": lane | {"waitMsMax": 90.0, "paused": True}}},
            }
        },
    }
    assert worker_health.lanes(reports) == {
        "t.fast": {
            "queued": 6,
            "behind": 20,
            "records": 200,
            "waitMsSum": 1000.0,
            "waitMsMax": 90.0,
            "paused": True,
        }
    }
    assert worker_health.lanes({"w": {"groups": {"ingest": {}}}}) == {}
