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


def test_a_worker_whose_loop_lags_past_a_second_is_a_problem_and_one_below_is_not() -> None:
    reports = {
        "w1": {"groups": {}, "loopLagMs": {"p50": 3.0, "p99": 240.0, "max": 400.0}},
        "w2": {"groups": {}, "loopLagMs": {"p50": 900.0, "p99": 2500.0, "max": 3000.0}},
        "w3": {"groups": {}},  # a report from before the probe existed
    }
    problems = worker_health.problems(reports)
    assert len(problems) == 1
    assert problems[0].startswith("worker w2: its event loop runs what is due 2.5s late")
