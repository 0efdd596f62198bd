"""The control plane on the real broker: a published change reaches a following feed within
a second, a new feed starts from the latest per key, and project stores every change in
``operator_events`` and the Redis ``control`` hash (never in an intent's read model)."""

from __future__ import annotations

import time
import uuid
from typing import cast

import pytest
import redis.asyncio as aioredis

from pipeline.codec import encode_event, encode_key
from pipeline.config import Settings
from pipeline.control import keys
from pipeline.control.feed import ControlFeed
from pipeline.control.publish import publish_change
from pipeline.models.control import KillSwitchChanged
from pipeline.stages.base import Record, StageContext
from pipeline.stages.project import ProjectStage
from pipeline.store.control_log import latest_control
from pipeline.store.eventstore import EventStore
from pipeline.topology.loader import load_topology
from tests.kafka_support import COMPACTED, new_topic


async def _compacted_topic(bootstrap: str) -> str:
    return await new_topic(bootstrap, "test.control", 1, COMPACTED)


def _kill(scope: str) -> KillSwitchChanged:
    return KillSwitchChanged(scope=scope, actor="ops@desk", reason="runaway strategy")


@pytest.mark.services
async def test_a_change_reaches_a_following_feed_within_a_second(kafka_bootstrap: str) -> None:
    topic = await _compacted_topic(kafka_bootstrap)
    feed = ControlFeed(kafka_bootstrap, topic)
    await feed.start()
    try:
        assert feed.state.killed("s1") is None
        seen = feed.updates
        started = time.monotonic()
        event = await publish_change(
            kafka_bootstrap, keys.kill_key("global"), "control.killed", _kill("global"), topic=topic
        )
        await feed.wait_for_update(seen, timeout_s=1.0)
        assert time.monotonic() - started < 1.0
        killed = feed.state.killed("s1")
        assert killed is not None
        assert killed.actor == "ops@desk"
        assert event.seq == 1
        # The next change of the key takes the next seq, even from another publisher.
        resumed = await publish_change(
            kafka_bootstrap,
            keys.kill_key("global"),
            "control.resumed",
            _kill("global"),
            topic=topic,
        )
        assert resumed.seq == 2
        await feed.wait_for_update(seen + 1, timeout_s=1.0)
        assert feed.state.killed("s1") is None
    finally:
        await feed.stop()
    # A feed starting now reads the latest change per key.
    fresh = ControlFeed(kafka_bootstrap, topic)
    await fresh.start()
    try:
        assert fresh.state.seq(keys.kill_key("global")) == 2
        assert fresh.state.killed(None) is None
    finally:
        await fresh.stop()


@pytest.mark.services
async def test_project_stores_control_changes_apart_from_intents(
    postgres_dsn: str, redis_url: str, tmp_path: object
) -> None:
    prefix = f"t{uuid.uuid4().hex[:6]}:"
    settings = Settings(postgres=postgres_dsn, redis=redis_url, redis_prefix=prefix)
    project = ProjectStage(StageContext(topology=load_topology(), settings=settings))
    await project.start()
    from pipeline.control.publish import control_event

    key = keys.kill_key(keys.strategy_scope("s-" + prefix))
    first = control_event(key, "control.killed", _kill(keys.strategy_scope("s-" + prefix)), 1, 5)
    second = control_event(key, "control.resumed", _kill(keys.strategy_scope("s-" + prefix)), 2, 6)

    def record(offset: int, value: bytes) -> Record:
        return Record(keys.TOPIC, 0, offset, 0, encode_key(key), value)

    async def emit(_: object) -> None:
        raise AssertionError("project emits nothing")

    try:
        # Newest first, then a redelivery of both: the hash ends on the newest.
        await project.process([record(1, encode_event(second))], emit)
        await project.process(
            [record(0, encode_event(first)), record(1, encode_event(second))], emit
        )
    finally:
        await project.stop()
    client = aioredis.from_url(redis_url, decode_responses=True)
    store = await EventStore.connect(postgres_dsn)
    try:
        latest = await latest_control(client, prefix)
        assert latest[key]["topic"] == "control.resumed"
        assert latest[key]["seq"] == 2
        assert await client.hget(f"{prefix}intent:{key}", "state") is None
        entries = cast(list[tuple[str, dict[str, str]]], await client.xrange(f"{prefix}changes"))
        assert [fields["topic"] for _, fields in entries] == ["control.resumed"]
        stored = await store.operator_events(["control.killed", "control.resumed"], limit=1000)
        mine = sorted(e.seq for e in stored if e.correlation_id == key)
        assert mine == [1, 2]
        assert await store.events_of(key) == []
    finally:
        await client.aclose()
        await store.close()
