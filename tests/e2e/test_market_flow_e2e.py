"""The sim venue's market flow on the real stack: the venue trades against its own pool on a
schedule (``plugins.venues.sim.config.flow``), nobody else trades, and momentum reads the
trend and buys; its intents carry the model version and complete.

One worker (it runs the venue's market source, and with it the flow) and the strategy
runner in its own process, against the session's Kafka, PostgreSQL and Redis, in consumer
groups of this run's own.  The flow's regimes are drawn from the tick: the test picks the
seed whose regime is "up" for the next ten minutes of ticks on the pool momentum reads, so
the trend is known in advance (10 bps a 250 ms tick, 3 bps of noise: about 0.2 % a bar).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import pytest

from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.topology import Topology, load_topology
from plugins.sim_venue.flow import MarketFlow, regime
from plugins.sim_venue.ledger import Ledger
from plugins.strategies.momentum.model import SignalModel
from tests.e2e.strategy_workers import strategy_workers

if TYPE_CHECKING:
    from pipeline.devstack import DevStack

RUN = uuid.uuid4().hex[:8]
MOMENTUM = f"momentum-flow-{RUN}"
POOL = "sim-weth-usdc-5"
EVERY_MS = 250
FLOW: dict[str, Any] = {
    "every_ms": EVERY_MS,
    "pools": [POOL],
    "vol_bps": 3.0,
    "trend_bps": 10.0,
    "regime_ticks": 4 * 3600,  # an hour a regime
}


def rising_seed() -> int:
    """A seed whose regime on ``POOL`` is up from now for ten minutes of ticks."""
    now = int(time.time() * 1000) // EVERY_MS
    ticks = (now, now + 10 * 60_000 // EVERY_MS)  # the blocks of ten minutes from now
    for seed in range(1_000):
        if all(regime(MarketFlow(seed=seed, **FLOW), POOL, t) == 1 for t in ticks):
            return seed
    raise AssertionError("no rising seed in a thousand")  # p = (1/3)^2 each: never


def flow_topology() -> Topology:
    data = load_topology().model_dump(by_alias=True, mode="json")
    data["app"]["id"] = f"sep-flow-{RUN}"
    data["plugins"]["venues"]["uniswap_v3"] = {"enabled": False}
    sim = data["plugins"]["venues"]["sim"]["config"]
    sim["market_interval_ms"] = EVERY_MS
    sim["flow"] = {**FLOW, "seed": rising_seed()}
    data["plugins"]["strategies"] = {
        MOMENTUM: {
            "plugin": "momentum",
            "config": {
                "asset": "WETH",
                "quote": "USDC",
                "venue": "sim",
                "pool_id": POOL,
                "bar_ms": 500,
                "budget": "200",
                "max_position": "1",
                "cooldown_bars": 2,
                "max_slippage": "0.02",
                "allowed_venues": ["sim"],
            },
        }
    }
    return Topology.model_validate(data)


TOPOLOGY = flow_topology()


@pytest.fixture(scope="module")
def settings(services: DevStack, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        kafka=services.kafka_bootstrap,
        postgres=services.postgres_dsn,
        redis=services.redis_url,
        data_dir=Path(tmp_path_factory.mktemp("flow")),
    )


@pytest.fixture(scope="module")
def pool(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    with strategy_workers(
        settings, TOPOLOGY, tmp_path_factory.mktemp("topology"), "flow"
    ) as workers:
        yield workers


async def momentum_intents(dsn: str, count: int, pool: WorkerPool) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 120
        while True:
            rows = await conn.fetch(
                "SELECT correlation_id, payload FROM events WHERE topic = 'intent.submitted' "
                "AND payload->'intent'->>'strategyId' = $1",
                MOMENTUM,
            )
            if len(rows) >= count:
                return [
                    {"id": r["correlation_id"], **orjson.loads(r["payload"])["intent"]}
                    for r in rows
                ]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(rows)} of {count} intents\n{pool.log_tail()}")
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def test_momentum_buys_the_trend_the_sim_venues_flow_makes(
    pool: WorkerPool, settings: Settings
) -> None:
    version = SignalModel().version
    intents = await momentum_intents(settings.postgres, 2, pool)
    done = await wait_until_finished(settings.postgres, [i["id"] for i in intents], 60, pool)
    assert set(done.values()) == {"exec.completed"}, done
    for intent in intents:
        ml = intent["mlFeatures"]
        assert ml[f"model:{version}"] == 1.0, ml
        assert ml["signal"] >= 0.58, ml
        assert ml["ret_30"] > 0, ml
        assert [a["asset"]["symbol"] for a in intent["assets"]] == ["USDC", "WETH"]
    # The trend was the venue's own trades: one a tick at most, in its ledger.
    ledger = Ledger.open_readonly(settings.data_dir / "venues" / "sim" / "ledger.sqlite")
    try:
        flow = [f for f in ledger.fills() if f.step_id.startswith(f"flow-{POOL}-")]
    finally:
        ledger.close()
    assert len(flow) >= 31  # momentum needs 31 bars (two ticks each) before it decides
    assert len({f.step_id for f in flow}) == len(flow)
