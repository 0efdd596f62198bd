"""Parity (issue 17, items 3 and 4): one strategy over one recorded market stream, in paper
mode on the Kafka runtime (a worker process, the broker, Redis) and in the backtest's
in-memory runtime, gives the same intents and the same fills, with the venue driven by the
stream in both.

The stream is a recording of a live chain venue's pool (``uniswap_v3/uni-weth-usdc-5``, a
seeded random walk).  In memory, the backtest makes it a sim pool and moves the sim venue's
pools to each state (``pipeline.backtest.driver``).  On Kafka, the topology is in paper mode
with ``uniswap_v3`` enabled: its paper twin fills in its place, and the worker's mirror moves
the twin's pools to each state as it arrives on ``sep.market.pools``
(``pipeline.market.mirror``); the live venue's own market source has no node to read here
(its start fails and is retried: the stream is the market).  In both, our fills move the pool
until its next state.

The stream is produced record by record with the record's own timestamp; the next record
waits until the twin's ledger has taken this one (its mark reaches the record's offset), and
after a record that made the strategy buy in memory, until that buy has completed on Kafka:
so the trades meet the same pool states in the same order.  (Not forced: that the state
of the record that triggers a buy reaches the twin before that buy is planned.  The runner
and the mirror read it independently; the intent crosses three topics first, the state one
read.)  Intent ids differ (ingest derives
them from the submission's record timestamp: the wall clock on Kafka, the simulated one in
memory); intents are compared by their client intent id, which the strategy derives from
market time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.backtest.data import POOLS_TOPIC
from pipeline.backtest.driver import Backtest
from pipeline.backtest.generators import GeneratorConfig, generate
from pipeline.backtest.setup import backtest_topology, first_pool_states
from pipeline.config import Settings
from pipeline.devstack.kafka import KafkaBroker
from pipeline.devstack.ports import choose_port
from pipeline.harness import WorkerPool
from pipeline.models.market import PoolState
from pipeline.runtime.topics import ensure_topics
from pipeline.topology import load_topology
from pipeline.topology.models import Topology
from plugins.sim_venue import Ledger
from plugins.sim_venue.paper import PAPER_LEDGER

START = 1_767_225_600_000
MINUTE = 60_000
LIVE = "uniswap_v3"
POOL = PoolState(
    pool_id="uni-weth-usdc-5", venue=LIVE, chain_id=31337, token0="WETH", token1="USDC",
    reserve0=2_000 * 10**18, reserve1=6_000_000 * 10**6, fee=500,
)  # fmt: skip
DCA = {
    "asset": "WETH",
    "quote": "USDC",
    "amount": "5000",
    "interval_ms": 10 * MINUTE,
    "start_ms": START,
    "max_buys": 4,  # records of other tests (wall-clock times) fall past the last interval
    "time_window_ms": 600_000,
}
Outcome = dict[str, tuple[Any, ...]]


def outcomes(events: Iterable[dict[str, Any]]) -> Outcome:
    """Per client intent id: what was asked (type, assets) and what was filled."""
    client: dict[str, str] = {}
    asked: dict[str, tuple[Any, ...]] = {}
    filled: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        payload, intent_id = event["payload"], event["correlationId"]
        if event["topic"] == "intent.submitted" and payload["intent"]["strategyId"] == "dca":
            intent = payload["intent"]
            client[intent_id] = intent["clientIntentId"]
            asked[intent_id] = (
                intent["type"],
                tuple((a["asset"]["symbol"], a.get("amount")) for a in intent["assets"]),
            )
        elif event["topic"] == "exec.step_filled":
            filled.setdefault(intent_id, []).append((payload["amountIn"], payload["amountOut"]))
    return {client[i]: (*asked[i], tuple(filled.get(i, ()))) for i in client}


def _mark(ledger: Path) -> int:
    """The offset of the pool state the paper twin's ledger last took (-1: none yet)."""
    if not ledger.is_file():
        return -1
    reader = Ledger.open_readonly(ledger)
    try:
        return reader.market_marks().get(POOL.pool_id, -1)
    except sqlite3.OperationalError:  # the twin is creating it
        return -1
    finally:
        reader.close()


async def _taken(ledger: Path, offset: int, within_s: float = 60.0) -> None:
    """Until the paper twin's ledger has taken the pool state at ``offset`` (or a later one)."""
    async with asyncio.timeout(within_s):
        while True:
            if _mark(ledger) >= offset:
                return
            await asyncio.sleep(0.02)  # another process writes it: nothing to wait on here


async def _kafka_run(
    settings: Settings, topology_file: Path, topology: Topology, stream: list[Any], buys: set[int]
) -> Outcome:
    await ensure_topics(settings.kafka, topology)
    consumer = AIOKafkaConsumer(
        *topology.stage("validate").inputs,  # sep.intents.ingested, or its lane topics
        "sep.executions",
        bootstrap_servers=settings.kafka,
        group_id=None,
    )
    await consumer.start()
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)  # resolve the end now, before anything is produced
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka)
    await producer.start()
    pool = WorkerPool(
        settings,
        count=1,
        # The runner drops submissions on market updates older than this lag (a live runner
        # must not trade on history); the stream is history here, as in the backtest, which
        # has no such limit.
        extra_env={"SEP_TOPOLOGY": str(topology_file), "SEP_STRATEGY_MAX_LAG_MS": str(2**62)},
        name="parity",
        singletons=topology.singleton_stages,  # the strategy runner, in a process of its own
    )
    pool.start()
    ledger = settings.data_dir / "venues" / LIVE / PAPER_LEDGER
    seen: list[dict[str, Any]] = []
    try:
        for event in stream:
            sent = await producer.send_and_wait(
                POOLS_TOPIC, event.value, key=event.key, timestamp_ms=event.at_ms
            )
            await _taken(ledger, sent.offset)
            assert pool.alive(), pool.log_tail()
            if event.at_ms not in buys:
                continue
            # Wait for this buy to complete before the market moves on.
            wanted = sum(1 for e in seen if e["topic"] == "exec.completed") + 1
            async with asyncio.timeout(180):
                while sum(1 for e in seen if e["topic"] == "exec.completed") < wanted:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        seen += [orjson.loads(r.value) for r in records]
                    assert pool.alive(), pool.log_tail()
        await asyncio.sleep(2)  # nothing more should come
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            seen += [orjson.loads(r.value) for r in records]
    finally:
        pool.stop()
        await producer.stop()
        await consumer.stop()
    fills = [e for e in seen if e["topic"] == "exec.step_filled"]
    assert fills
    assert all(e["payload"]["paper"] is True and e["payload"]["venue"] == LIVE for e in fills)
    return outcomes(seen)


def _paper_topology(topology: Topology, run: str, tmp_path: Path) -> dict[str, Any]:
    """The backtest's topology for the Kafka runtime in paper mode: the live venue enabled
    (its twin trades), the sim venue off (the backtest's sim pool is the twin's here)."""
    data = topology.model_dump(by_alias=True, mode="json")
    data["app"] = {"id": f"parity-{run}", "mode": "paper"}
    venues = data["plugins"]["venues"]
    venues["sim"]["enabled"] = False
    # No node: the stream is the market (the live venue's start is retried in the background).
    venues[LIVE] = {
        "enabled": True,
        "config": {"rpc_url": "http://127.0.0.1:9", "deployment_file": str(tmp_path / "none")},
    }
    return data


@pytest.fixture
async def private_kafka(tmp_path: Path) -> AsyncIterator[str]:
    """A broker of this test's own: the session's broker carries other tests' pool states on
    ``sep.market.pools`` (their sim venues publish every second under the same venue and
    pool names), and a planner following them routes on pools that are not this run's."""
    taken: set[int] = set()
    port = choose_port(0, taken=taken)
    taken.add(port)
    broker = KafkaBroker(
        tmp_path / "private-kafka", port, controller_port=choose_port(0, taken=taken)
    )
    broker.start()
    try:
        await broker.wait_healthy()
        yield broker.bootstrap
    finally:
        broker.stop()


async def test_kafka_and_memory_give_the_same_intents_and_fills(
    private_kafka: str, redis_url: str, tmp_path: Path
) -> None:
    config = GeneratorConfig(seed=11, steps=40, vol=Decimal("0.01"), start_ms=START)
    stream = list(generate(config, [POOL]))
    topology = backtest_topology(
        load_topology(), first_pool_states(stream), strategies={"dca": {"config": DCA}}
    )
    memory = await Backtest(topology, stream, tmp_path / "memory").run()
    in_memory = outcomes(orjson.loads(e) for e in memory.events)
    assert sorted(in_memory) == ["dca-0", "dca-1", "dca-2", "dca-3"]
    buys = {
        e["payload"]["intent"]["createdAtMs"]
        for raw in memory.events
        if (e := orjson.loads(raw))["topic"] == "intent.submitted"
    }

    run = uuid.uuid4().hex[:8]
    data = _paper_topology(topology, run, tmp_path)
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = Settings(
        kafka=private_kafka,
        redis=redis_url,
        data_dir=tmp_path / "kafka",
        redis_prefix=f"parity-{run}:",
    )
    on_kafka = await _kafka_run(
        settings, topology_file, Topology.model_validate(data), stream, buys
    )
    assert on_kafka == in_memory
    assert all(fills for *_, fills in in_memory.values())  # every buy filled
