"""500 intents through the real pipeline, then: the API agrees with the event store for every
intent, and a replay from the event store rebuilds read models identical to the live ones."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from pipeline.cli.replay import run as replay_cli
from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, skip_backlog, wait_until_finished
from pipeline.samples import random_submission
from pipeline.store import namespace, replay
from pipeline.store.eventstore import EventStore
from pipeline.store.projection import STATE_OF
from pipeline.store.readmodel import ReadModel
from tests.store.lifecycle import TOPOLOGY
from tests.ui.server import ServerThread

INTENTS = 500


@pytest.fixture(scope="module")
async def workers(ui_settings: Settings) -> AsyncIterator[WorkerPool]:
    # From now on only: this module's store and read model are its own, but the topics and
    # the consumer group are the session's.  Earlier modules' records (the chain test's, run
    # by other consumer groups, i.e. other pipelines) would otherwise be run a second time
    # here, and their first run's events would reach this store too: two answers under one
    # seq, by design of the test session, not of the product.
    await skip_backlog(
        ui_settings.kafka, TOPOLOGY.app.id, {t.name: t.partitions for t in TOPOLOGY.topics}
    )
    pool = WorkerPool(ui_settings, count=2)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="module")
async def run_ids(ui_settings: Settings, workers: WorkerPool) -> list[str]:
    rng = random.Random(11)
    run = uuid.uuid4().hex[:6]
    ids = []
    async with IntentProducer(ui_settings.kafka) as producer:
        deliveries = []
        for i in range(INTENTS):
            body = random_submission(
                TOPOLOGY,
                rng,
                strategy_id=f"run-{run}-{i % 7}",
                client_intent_id=f"{run}-{i}",
                venues=["sim"],
            )
            stamp, delivery = await producer.send(body)
            deliveries.append(delivery)
            ids.append(predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"]))
        await asyncio.gather(*deliveries)
    await wait_until_finished(ui_settings.postgres, ids, timeout=240, pool=workers)
    await settled(ui_settings)
    return ids


async def settled(settings: Settings) -> None:
    """Until every stored event is in the read model (terminal in the store comes first)."""
    client = aioredis.from_url(settings.redis, decode_responses=True)
    model = ReadModel(client, settings.redis_prefix)
    store = await EventStore.connect(settings.postgres)
    try:
        for _ in range(200):
            stored = sum((await store.count_by_topic()).values())
            applied = sum(
                int(v)
                for v in (await client.hgetall(f"{settings.redis_prefix}stats:events")).values()
            )
            if applied >= stored and await model.pending_positions() == 0:
                return
            await asyncio.sleep(0.1)
        # Say which: two events under one (intent, seq) would be a re-emission that changed
        # (the store keeps both ids, the read model applies a seq once).
        conn = await asyncpg.connect(settings.postgres)
        try:
            doubles = await conn.fetch(
                "SELECT correlation_id, seq, array_agg(topic) AS topics, "
                "array_agg(event_id) AS ids FROM events GROUP BY correlation_id, seq "
                "HAVING count(*) > 1 LIMIT 10"
            )
        finally:
            await conn.close()
        raise AssertionError(
            f"read model has {applied} of {stored} events; "
            f"seqs stored twice: {[dict(r) for r in doubles]}"
        )
    finally:
        await store.close()
        await client.aclose()


async def test_every_intent_in_the_api_agrees_with_the_event_store(
    run_ids: list[str], server: ServerThread, ui_settings: Settings
) -> None:
    store = await EventStore.connect(ui_settings.postgres)
    states: dict[str, int] = {}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            for intent_id in run_ids:
                body = (await client.get(f"/intents/{intent_id}")).json()
                stored = await store.events_of(intent_id)
                assert [e["eventId"] for e in body["events"]] == [e.event_id for e in stored]
                assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
                view = body["intent"]
                state = "submitted"
                for e in stored:
                    state = STATE_OF[e.topic] or state
                assert (view["state"], view["eventCount"], view["lastSeq"]) == (
                    state,
                    len(stored),
                    len(stored),
                ), intent_id
                assert set(view["timestamps"]) == {e.topic for e in stored}
                if stored[-1].topic == "exec.completed":
                    done = stored[-1].payload
                    assert (view["amountIn"], view["amountOut"]) == (
                        done["amountIn"],
                        done["amountOut"],
                    )
                    assert body["plan"]["status"] == "completed"
                states[state] = states.get(state, 0) + 1
    finally:
        await store.close()
    assert states.get("completed", 0) > INTENTS * 0.8, states


async def test_replay_rebuilds_identical_read_models(
    run_ids: list[str], ui_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    rebuilt = await replay.rebuild(ui_settings, TOPOLOGY, batch=700)
    try:
        assert rebuilt.events >= INTENTS * 5
        differences = await replay.verify(ui_settings, rebuilt)
    finally:
        await replay.drop(ui_settings, rebuilt)
    assert differences == []

    # The CLI path: verify says identical; then a real swap leaves the same models live.
    assert await replay_cli(ui_settings, TOPOLOGY, verify=True, quiet=True) == 0
    assert "identical" in capsys.readouterr().out
    raw = aioredis.from_url(ui_settings.redis)
    try:
        before = await namespace.dump(raw, ui_settings.redis_prefix)
        head_before = await raw.xrevrange(f"{ui_settings.redis_prefix}changes", count=1)
        assert await replay_cli(ui_settings, TOPOLOGY, verify=False, quiet=True) == 0
        after = await namespace.dump(raw, ui_settings.redis_prefix)
        assert namespace.diff(before, after) == []
        # Compared: each intent's hash and its plan's (seq bitmaps and guards are not: they
        # exist only while events arrive out of order), plus the indexes.
        assert len(before) > INTENTS * 2
        # The change stream belongs to the live namespace: kept, and nothing added to it.
        assert await raw.xrevrange(f"{ui_settings.redis_prefix}changes", count=1) == head_before
        assert not [k async for k in raw.scan_iter(match=f"{ui_settings.redis_prefix}replay-*")]
    finally:
        await raw.aclose()
