"""The strategy runner on the real stack: dca's and momentum's intents complete, a disable
stops them within a second, and a kill -9 of the runner duplicates nothing.

One worker (every stage but the runner) and the runner in its own process, as ``sep up``
runs them, against the session's Kafka, PostgreSQL and Redis.  The sim venue publishes its
pools every 250 ms (the runner's market and clock); dca buys 10 USDC of WETH every 2 s under
a strategy id of this run's own, in consumer groups of this run's own (``app.id``), started
at the end of every topic so that other modules' traffic is not replayed.

Momentum needs a market that moves, and the sim venue's prices move only when someone
trades.  So a "market mover" (another strategy id, submitting from the test like any
producer) buys WETH with 100 USDC every 250 ms through the pipeline: real trades against the
sim venue's WETH/USDC pools, the only pools here and shallow (100 WETH / 300,000 USDC and
25 / 75,000), so that they lift the price about 0.1 % per half-second bar, a trend the
model reads as "up" (P(up) about 0.7 at that pace, above its buy threshold of 0.58).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.client import IntentProducer
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.samples import submission
from pipeline.strategy_admin import change_strategy
from pipeline.topology import Topology, load_topology
from plugins.strategies.momentum.model import SignalModel
from tests.e2e.strategy_workers import strategy_workers

if TYPE_CHECKING:
    from pipeline.devstack import DevStack

RUN = uuid.uuid4().hex[:8]
STRATEGY = f"dca-e2e-{RUN}"
INTERVAL_MS = 2_000
MOMENTUM = f"momentum-e2e-{RUN}"
BAR_MS = 500
MOVER = f"mover-e2e-{RUN}"
MOVER_EVERY_S = 0.25
SHALLOW_POOLS = {"sim-weth-usdc-5": ("100", "300000"), "sim-weth-usdc-30": ("25", "75000")}
WHO: dict[str, Any] = {"actor": "e2e", "reason": "test"}


def strategies_topology() -> Topology:
    data = load_topology().model_dump(by_alias=True, mode="json")
    data["app"]["id"] = f"sep-strat-{RUN}"
    data["plugins"]["venues"]["uniswap_v3"] = {"enabled": False}
    sim = data["plugins"]["venues"]["sim"]["config"]
    sim["market_interval_ms"] = 250
    # Only the WETH/USDC pools, shallow: with the deep WBTC pools beside them the router
    # sends most of a WETH buy through WBTC, and the direct pools' price hardly moves.
    sim["pools"] = [p for p in sim["pools"] if p["pool_id"] in SHALLOW_POOLS]
    for pool in sim["pools"]:
        pool["reserve0"], pool["reserve1"] = SHALLOW_POOLS[pool["pool_id"]]
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
        },
        MOMENTUM: {
            "plugin": "momentum",
            "config": {
                "asset": "WETH",
                "quote": "USDC",
                "venue": "sim",
                "bar_ms": BAR_MS,
                "budget": "200",
                "max_position": "1",
                "cooldown_bars": 2,
                "max_slippage": "0.02",
                "allowed_venues": ["sim"],
            },
        },
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
    with strategy_workers(
        settings, TOPOLOGY, tmp_path_factory.mktemp("topology"), "strat"
    ) as workers:
        yield workers


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.postgres)
    try:
        yield conn
    finally:
        await conn.close()


async def strategy_intents(
    conn: asyncpg.Connection, strategy: str = STRATEGY
) -> list[dict[str, Any]]:
    """The strategy's intents in the event store, oldest first (one row per intent)."""
    rows = await conn.fetch(
        "SELECT correlation_id, payload FROM events WHERE topic = 'intent.submitted' "
        "AND payload->'intent'->>'strategyId' = $1",
        strategy,
    )
    intents = [{"id": r["correlation_id"], **orjson.loads(r["payload"])["intent"]} for r in rows]
    return sorted(intents, key=lambda i: i["createdAtMs"])


async def wait_for_intents(
    conn: asyncpg.Connection,
    count: int,
    timeout_s: float,
    pool: WorkerPool,
    strategy: str = STRATEGY,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        intents = await strategy_intents(conn, strategy)
        if len(intents) >= count:
            return intents
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(intents)} of {count} {strategy} intents after {timeout_s:.0f}s\n"
                f"{pool.log_tail()}"
            )
        await asyncio.sleep(0.25)


async def produced_client_ids(kafka: str, strategy: str = STRATEGY) -> Counter[str]:
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
                    # The input topic holds other tests' records too, malformed ones among them.
                    if record.value and f'"strategyId":"{strategy}"'.encode() in record.value:
                        seen[orjson.loads(record.value)["clientIntentId"]] += 1
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
        return seen
    finally:
        await consumer.stop()


async def settled(
    conn: asyncpg.Connection, kafka: str, strategy: str, pool: WorkerPool
) -> tuple[list[dict[str, Any]], Counter[str], int]:
    """Disable ``strategy``, then its intents in the store and the records the runner produced
    for it, once the store has them all, and when it was disabled (epoch ms).  (Compared
    while it runs, a record produced between reading the store and reading the topic would
    look like one the store lost.)"""
    disabled = await change_strategy(kafka, TOPOLOGY, "disable", strategy, **WHO)
    await asyncio.sleep(3)  # obeyed within a second; a running one would decide meanwhile
    produced = await produced_client_ids(kafka, strategy)
    deadline = time.monotonic() + 30
    while True:
        intents = await strategy_intents(conn, strategy)
        if {i["clientIntentId"] for i in intents} >= set(produced):
            return intents, produced, int(disabled.timestamp.timestamp() * 1000)
        if time.monotonic() > deadline:
            missing = set(produced) - {i["clientIntentId"] for i in intents}
            raise TimeoutError(f"produced but not stored: {sorted(missing)}\n{pool.log_tail()}")
        await asyncio.sleep(0.25)


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
    await wait_for_intents(db, len(killed_at) + 3, 90, pool)
    restarted = pool.log_file(slot).read_text().rsplit("restarted ---", 1)[-1]
    assert "strategy state restored" in restarted  # from the changelog, not started afresh
    final, produced, _ = await settled(db, settings.kafka, STRATEGY, pool)

    # Nothing twice: one intent per client id in the store.  The runner, with its state
    # restored, does not even produce one again: its state and its intents of a batch are
    # acknowledged together, so only a kill between those two acknowledgements (a window of
    # well under a millisecond) re-produces one record, which ingest's dedupe drops.
    client_ids = Counter(i["clientIntentId"] for i in final)
    assert [c for c, n in client_ids.items() if n > 1] == []
    assert set(produced) == set(client_ids)
    assert sum(n - 1 for n in produced.values()) <= 1, produced
    # Interval indexes only move forward (the restored state skipped none it had bought).
    indexes = [int(c.rsplit("-", 1)[1]) for c in client_ids]
    assert len(set(indexes)) == len(indexes)
    done = await wait_until_finished(settings.postgres, [i["id"] for i in final], 60, pool)
    assert set(done.values()) == {"exec.completed"}, done


async def move_the_market(kafka: str, stop: asyncio.Event) -> list[str]:
    """Buy WETH with 100 USDC every ``MOVER_EVERY_S`` through the pipeline until ``stop``;
    the client intent ids submitted."""
    sent: list[str] = []
    async with IntentProducer(kafka) as producer:
        while not stop.is_set():
            client_id = f"{MOVER}-{len(sent)}"
            body = submission(
                TOPOLOGY,
                "DISPOSE",
                "USDC",
                "WETH",
                "100",
                strategy_id=MOVER,
                client_intent_id=client_id,
                max_slippage="0.05",
                time_window_ms=60_000,
                venues=["sim"],
            )
            await producer.send(body)
            sent.append(client_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MOVER_EVERY_S)
        await producer.flush()
    return sent


def assert_momentum_buys(intents: list[dict[str, Any]], version: str) -> None:
    """Each intent is a buy on an "up" signal from a rising market, naming the model."""
    for intent in intents:
        ml = intent["mlFeatures"]
        assert ml[f"model:{version}"] == 1.0, ml
        assert ml["signal"] >= 0.58, ml  # the config's buy_above (the default)
        assert ml["ret_30"] > 0, ml  # the mover's trades lifted the price it saw
        assert intent["type"] == "DISPOSE"
        assert [a["asset"]["symbol"] for a in intent["assets"]] == ["USDC", "WETH"]
        assert Decimal(intent["assets"][0]["amount"]) <= Decimal("200")  # within the budget
        assert intent["clientIntentId"].startswith(f"{MOMENTUM}-")


async def test_momentum_trades_a_rising_market_survives_kill_9_and_obeys_a_disable(
    pool: WorkerPool, settings: Settings, db: asyncpg.Connection
) -> None:
    version = SignalModel().version  # what the packaged model says it is
    before = len(await strategy_intents(db, MOMENTUM))
    stop = asyncio.Event()
    mover = asyncio.create_task(move_the_market(settings.kafka, stop))
    try:
        # 1. The mover's trades lift the price; the model reads the trend as up and buys.
        first = await wait_for_intents(db, before + 2, 120, pool, MOMENTUM)
        done = await wait_until_finished(settings.postgres, [i["id"] for i in first], 60, pool)
        assert set(done.values()) == {"exec.completed"}, done
        assert_momentum_buys(first[before:], version)

        # 2. The runner killed mid-stream and restarted: momentum goes on from its state.
        slot = pool.singleton_slot("strategy_runner")
        pool.procs[slot].kill()
        pool.procs[slot].wait()
        killed_at = await strategy_intents(db, MOMENTUM)
        pool.respawn(slot)
        await wait_for_intents(db, len(killed_at) + 2, 120, pool, MOMENTUM)
        # 3. Disabled while the trend goes on: nothing created a second after the change.
        final, produced, disabled_at = await settled(db, settings.kafka, MOMENTUM, pool)
    finally:
        stop.set()
        moved = await mover

    late = [i for i in final if i["createdAtMs"] > disabled_at + 1_000]
    assert late == [], f"submitted after the disable at {disabled_at}: {late}"

    assert_momentum_buys(final[before:], version)
    client_ids = Counter(i["clientIntentId"] for i in final)
    assert [c for c, n in client_ids.items() if n > 1] == []
    assert set(produced) == set(client_ids)
    assert sum(n - 1 for n in produced.values()) <= 1, produced
    done = await wait_until_finished(settings.postgres, [i["id"] for i in final], 60, pool)
    assert set(done.values()) == {"exec.completed"}, done
    # The trend was made of real trades: the mover's intents filled on the sim venue.
    # The mover's last intents may still be on their way to the event store: wait for them
    # (each was acknowledged by the broker, so each must arrive).
    movers = await strategy_intents(db, MOVER)
    deadline = time.monotonic() + 30
    while {i["clientIntentId"] for i in movers} != set(moved) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        movers = await strategy_intents(db, MOVER)
    assert {i["clientIntentId"] for i in movers} == set(moved)
    ended = await wait_until_finished(settings.postgres, [i["id"] for i in movers], 60, pool)
    assert Counter(ended.values())["exec.completed"] >= len(moved) * 0.9, Counter(ended.values())
