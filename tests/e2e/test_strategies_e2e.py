"""The strategy runner on the real stack: dca's intents complete, a disable stops them within a
second, and a kill -9 of the runner duplicates nothing.

One worker (every stage but the runner) and the runner in its own process, as ``sep up``
runs them, against the session's Kafka, PostgreSQL and Redis.  The sim venue publishes its
pools every 250 ms (the runner's market and clock); dca buys 10 USDC of WETH every 2 s under
a strategy id of this run's own, in consumer groups of this run's own (``app.id``), started
at the end of every topic so that other modules' traffic is not replayed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.harness import WorkerPool, skip_backlog, wait_until_finished
from pipeline.runtime.app import group_id
from pipeline.runtime.topics import ensure_topics
from pipeline.store.eventstore import EventStore
from pipeline.strategy_admin import change_strategy
from pipeline.topology import Topology, load_topology

if TYPE_CHECKING:
    from pipeline.devstack import DevStack

RUN = uuid.uuid4().hex[:8]
STRATEGY = f"dca-e2e-{RUN}"
INTERVAL_MS = 2_000
WHO: dict[str, Any] = {"actor": "e2e", "reason": "test"}


def strategies_topology() -> Topology:
    data = load_topology().model_dump(by_alias=True, mode="json")
    data["app"]["id"] = f"sep-strat-{RUN}"
    data["plugins"]["venues"]["uniswap_v3"] = {"enabled": False}
    data["plugins"]["venues"]["sim"]["config"]["market_interval_ms"] = 250
    data["plugins"]["strategies"] = {
        STRATEGY: {
            "plugin": "dca",
            "config": {
                "asset": "WETH",
                "quote": "USDC",
                "amount": "10",
                "interval_ms": INTERVAL_MS,
                "allowed_venues": ["sim"],
            },
        }
    }
    return Topology.model_validate(data)


TOPOLOGY = strategies_topology()


@pytest.fixture(scope="module")
def settings(services: DevStack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        kafka=services.kafka_bootstrap,
        postgres=services.postgres_dsn,
        redis=services.redis_url,
        data_dir=Path(tmp_path_factory.mktemp("strategies")),
    )


@pytest.fixture(scope="module")
def pool(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    path = tmp_path_factory.mktemp("topology") / "topology.yaml"
    path.write_text(yaml.safe_dump(TOPOLOGY.model_dump(by_alias=True, mode="json")))

    async def prepare() -> None:
        await ensure_topics(settings.kafka, TOPOLOGY)
        partitions = {t.name: t.partitions for t in TOPOLOGY.topics}
        for group in (group_id(TOPOLOGY), group_id(TOPOLOGY, ["strategy_runner"])):
            await skip_backlog(settings.kafka, group, partitions)
        store = await EventStore.connect(settings.postgres)
        await store.close()

    asyncio.run(prepare())
    workers = WorkerPool(
        settings,
        count=1,
        singletons=TOPOLOGY.singleton_stages,
        extra_env={"SEP_TOPOLOGY": str(path)},
        name="strat",
    )
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.postgres)
    try:
        yield conn
    finally:
        await conn.close()


async def strategy_intents(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The strategy's intents in the event store, oldest first (one row per intent)."""
    rows = await conn.fetch(
        "SELECT correlation_id, payload FROM events WHERE topic = 'intent.submitted' "
        "AND payload->'intent'->>'strategyId' = $1",
        STRATEGY,
    )
    intents = [{"id": r["correlation_id"], **orjson.loads(r["payload"])["intent"]} for r in rows]
    return sorted(intents, key=lambda i: i["createdAtMs"])


async def wait_for_intents(
    conn: asyncpg.Connection, count: int, timeout_s: float, pool: WorkerPool
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        intents = await strategy_intents(conn)
        if len(intents) >= count:
            return intents
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(intents)} of {count} {STRATEGY} intents after {timeout_s:.0f}s\n"
                f"{pool.log_tail()}"
            )
        await asyncio.sleep(0.25)


async def produced_client_ids(kafka: str) -> Counter[str]:
    """Every record the runner produced for the strategy, counted by client intent id."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = TOPOLOGY.topic("sep.intents.submitted")
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: Counter[str] = Counter()
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            for records in (await consumer.getmany(*todo, timeout_ms=500)).values():
                for record in records:
                    if record.key == STRATEGY.encode() and record.value:
                        seen[orjson.loads(record.value)["clientIntentId"]] += 1
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
        return seen
    finally:
        await consumer.stop()


async def test_dca_runs_obeys_a_disable_within_a_second_and_survives_kill_9(
    pool: WorkerPool, settings: Settings, db: asyncpg.Connection
) -> None:
    # 1. Running: the runner buys every interval, and the buys complete.
    first = await wait_for_intents(db, 3, 90, pool)
    done = await wait_until_finished(settings.postgres, [i["id"] for i in first], 60, pool)
    assert set(done.values()) == {"exec.completed"}, done

    # 2. Disabled through the control plane: nothing created a second after the change.
    disabled = await change_strategy(settings.kafka, TOPOLOGY, "disable", STRATEGY, **WHO)
    disabled_at = int(disabled.timestamp.timestamp() * 1000)
    await asyncio.sleep(3 * INTERVAL_MS / 1000)
    after = [i for i in await strategy_intents(db) if i["createdAtMs"] > disabled_at + 1_000]
    assert after == [], f"submitted after the disable at {disabled_at}: {after}"
    quiet = len(await strategy_intents(db))

    # 3. Enabled again, then the runner killed mid-stream and restarted.
    await change_strategy(settings.kafka, TOPOLOGY, "enable", STRATEGY, **WHO)
    await wait_for_intents(db, quiet + 2, 60, pool)
    slot = pool.singleton_slot("strategy_runner")
    pool.procs[slot].kill()
    pool.procs[slot].wait()
    killed_at = await strategy_intents(db)
    pool.respawn(slot)
    # Its group waits out the dead member's session (6 s) before the new one gets the
    # partitions; then it goes on buying.
    final = await wait_for_intents(db, len(killed_at) + 3, 90, pool)
    restarted = pool.log_file(slot).read_text().rsplit("restarted ---", 1)[-1]
    assert "strategy state restored" in restarted  # from the changelog, not started afresh

    # Nothing twice: one intent per client id in the store.  The runner, with its state
    # restored, does not even produce one again: its state and its intents of a batch are
    # acknowledged together, so only a kill between those two acknowledgements (a window of
    # well under a millisecond) re-produces one record, which ingest's dedupe drops.
    client_ids = Counter(i["clientIntentId"] for i in final)
    assert [c for c, n in client_ids.items() if n > 1] == []
    produced = await produced_client_ids(settings.kafka)
    assert set(produced) == set(client_ids)
    assert sum(n - 1 for n in produced.values()) <= 1, produced
    # Interval indexes only move forward (the restored state skipped none it had bought).
    indexes = [int(c.rsplit("-", 1)[1]) for c in client_ids]
    assert len(set(indexes)) == len(indexes)
    done = await wait_until_finished(settings.postgres, [i["id"] for i in final], 60, pool)
    assert set(done.values()) == {"exec.completed"}, done
