"""The loss breakers on the real chain: a whale's swaps on the Uniswap V3 WETH/USDC pools drive
WETH down against a strategy that bought WETH through the pipeline; its loss, marked to
market, takes it NORMAL -> REDUCING -> HALTED at the configured thresholds.  In REDUCING a
sale (reducing) passes and settles on chain, a purchase is refused; in HALTED nothing passes.

Everything is real: two workers on the real broker, PostgreSQL and Redis, the uniswap_v3
venue on anvil.  The whale (anvil's dev account 9) trades on the pools directly through the
SwapRouter, as any market participant does; each push moves *every* WETH/USDC pool to the
same price in one block (an arbitrageur keeps them aligned), with ``sqrtPriceLimitX96`` so
the price lands exactly where the test wants it.  The sim venue is disabled in the workers'
topology: its deeper WETH/USDC pool would otherwise set the mark (marks come from the
deepest pool, ``docs/risk.md``), and this scenario is about the chain.

The targets are chosen as losses well away from the thresholds, and the price for each is
solved from the victim's fills as the event store holds them; the state is then checked
against that independent loss (the engine's own P&L must agree with it to the cent).  After
the test the whale puts both pools back at their starting prices (the chain is shared by
the session's tests).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
import yaml
from web3 import Web3

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.devstack.uniswap import DevChain
from pipeline.harness import WorkerPool, skip_backlog, wait_until_finished
from pipeline.runtime.app import group_id
from pipeline.samples import submission
from pipeline.store import risk_usage
from pipeline.store.control_log import latest_control
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from tests.e2e.whale import Whale

pytestmark = pytest.mark.services

TOPOLOGY = load_topology()
VENUE = "uniswap_v3"
CAPITAL, REDUCE_AT, HALT_AT = Decimal(200_000), Decimal(1_000), Decimal(3_000)
BOUGHT = Decimal(40)
"""WETH the victim buys first (~120,000 USDC: 60 % of its capital, under the 0.8 cap)."""


def _chain_topology(path: Path, victim: str) -> Path:
    """The repository's topology with the sim venue off and the victim's breaker set."""
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw["plugins"]["venues"]["sim"]["enabled"] = False
    raw["risk"]["strategies"] = {
        victim: {
            "capital": str(CAPITAL),
            "reduce_at_loss": str(REDUCE_AT),
            "halt_at_loss": str(HALT_AT),
            # Loss is the rule under test; the drawdown rules stay out of its way.
            "reduce_at_drawdown": "0.5",
            "halt_at_drawdown": "0.9",
        }
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_topology(path)  # fails here, with the YAML path, if the edit broke it
    return path


@pytest.fixture(scope="module")
def victim() -> str:
    return f"chain-victim-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def pool(
    prepared: Settings, victim: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerPool]:
    topology = _chain_topology(tmp_path_factory.mktemp("topology") / "topology.yaml", victim)
    # This module's workers skip what earlier modules left on the topics (sim intents that
    # this topology cannot plan).
    inputs = {t for s in TOPOLOGY.stages if not s.singleton for t in s.inputs}
    await skip_backlog(
        prepared.kafka,
        group_id(TOPOLOGY),
        {t.name: t.partitions for t in TOPOLOGY.topics if t.name in inputs},
    )
    workers = WorkerPool(
        prepared, count=2, name="chain-risk", extra_env={"SEP_TOPOLOGY": str(topology)}
    )
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


@pytest.fixture
def whale(chain: DevChain) -> Iterator[Whale]:
    w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
    trader = Whale(w3, chain)
    trader.fund()
    try:
        yield trader
    finally:
        trader.restore()


class Desk:
    """The victim's side: intents through the pipeline, and what the store says it holds."""

    def __init__(self, settings: Settings, pool: WorkerPool, victim: str) -> None:
        self.settings, self.pool, self.victim = settings, pool, victim
        self.intents: list[str] = []

    async def trade(self, kind: str, amount: str) -> tuple[str, dict[str, Any]]:
        """One intent, to its end: its terminal event and its risk verdict's payload."""
        client_id = f"c{len(self.intents)}-{uuid.uuid4().hex[:6]}"
        body = submission(
            TOPOLOGY,
            kind,
            "WETH",
            "USDC",
            amount,
            strategy_id=self.victim,
            client_intent_id=client_id,
            max_slippage="0.02",
            time_window_ms=600_000,
            venues=[VENUE],
        )
        async with IntentProducer(self.settings.kafka) as producer:
            stamp, delivery = await producer.send(body)
            await delivery
        intent = predicted_intent_id(stamp, self.victim, client_id)
        self.intents.append(intent)
        done = await wait_until_finished(self.settings.postgres, [intent], 120, self.pool)
        conn = await asyncpg.connect(self.settings.postgres)
        try:
            row = await conn.fetchrow(
                "SELECT payload FROM events WHERE correlation_id = $1 "
                "AND topic IN ('risk.approved', 'risk.rejected')",
                intent,
            )
        finally:
            await conn.close()
        assert row is not None
        return done[intent], orjson.loads(row["payload"])

    async def holdings(self) -> tuple[Decimal, Decimal]:
        """(WETH held, USDC net) from the victim's fills in the event store."""
        conn = await asyncpg.connect(self.settings.postgres)
        try:
            rows = await conn.fetch(
                "SELECT payload FROM events WHERE topic = 'exec.step_filled' "
                "AND correlation_id = ANY($1::text[])",
                self.intents,
            )
        finally:
            await conn.close()
        held = {"WETH": Decimal(0), "USDC": Decimal(0)}
        for row in rows:
            fill = orjson.loads(row["payload"])
            held[fill["assetIn"]] -= Decimal(fill["amountIn"])
            held[fill["assetOut"]] += Decimal(fill["amountOut"])
        return held["WETH"], held["USDC"]

    async def loss_at(self, price: Decimal) -> Decimal:
        """Loss since the first epoch (baseline: the capital) with WETH at ``price``."""
        weth, usdc = await self.holdings()
        return -(usdc + weth * price)

    async def price_for_loss(self, loss: Decimal) -> Decimal:
        weth, usdc = await self.holdings()
        return ((-loss - usdc) / weth).quantize(Decimal("0.0001"))

    async def redis(self) -> aioredis.Redis:
        return aioredis.from_url(self.settings.redis, decode_responses=True)

    async def engine_saw(self, price: Decimal, within_s: float = 30.0) -> None:
        """Until the workers' engines mark WETH at ``price`` from the chain (after that
        evaluation, any transition it causes has been published)."""
        client = await self.redis()
        try:
            deadline = time.monotonic() + within_s
            while True:
                report = await risk_usage.read(client, self.settings.redis_prefix)
                mark = (report or {}).get("marks", {}).get("WETH")
                if (
                    mark is not None
                    and mark["source"].startswith(f"{VENUE}/")
                    and abs(Decimal(mark["price"]) - price) < Decimal("0.01")
                ):
                    return
                assert time.monotonic() < deadline, (
                    f"no engine marked WETH at {price}: {mark}\n{self.pool.log_tail()}"
                )
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()

    async def state(self) -> dict[str, Any] | None:
        client = await self.redis()
        try:
            event = (await latest_control(client, self.settings.redis_prefix)).get(
                f"risk/strategy:{self.victim}"
            )
        finally:
            await client.aclose()
        return None if event is None else dict(event["payload"])

    async def wait_state(self, state: str, within_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            record = await self.state()
            if record is not None and record["state"] == state:
                return record
            assert time.monotonic() < deadline, f"never {state}: {record}"
            await asyncio.sleep(0.1)


def expected(loss: Decimal) -> str:
    return "HALTED" if loss >= HALT_AT else "REDUCING" if loss >= REDUCE_AT else "NORMAL"


async def test_chain_prices_driven_against_a_strategy_take_it_to_reducing_then_halted(
    prepared: Settings, pool: WorkerPool, victim: str, whale: Whale
) -> None:
    desk = Desk(prepared, pool, victim)
    topic, verdict = await desk.trade("ACQUIRE", str(BOUGHT))
    assert topic == "exec.completed", verdict
    weth, _usdc = await desk.holdings()
    assert weth == BOUGHT
    anchor = await desk.wait_state("NORMAL", within_s=30)  # the first epoch: from the capital
    assert Decimal(anchor["baselineEquity"]) == CAPITAL

    seen = ["NORMAL"]
    transitions: dict[str, dict[str, Any]] = {}
    # Losses to drive the victim to, each well clear of a threshold; the REDUCING trades
    # happen at the first target past reduce_at_loss.
    for target_loss in (Decimal(400), Decimal(1_600), Decimal(2_300), Decimal(3_600)):
        price = await desk.price_for_loss(target_loss)
        whale.push(price)
        on_chain = whale.price()
        assert abs(on_chain - price) < Decimal("0.001"), (on_chain, price)
        loss = await desk.loss_at(on_chain)  # independent of the engine: fills x chain price
        assert abs(loss - target_loss) < 1, (loss, target_loss)
        await desk.engine_saw(on_chain)
        want = expected(loss)
        record = await desk.wait_state(want)
        await asyncio.sleep(1.5)  # three evaluations more at this price: no further step
        still = await desk.state()
        assert still is not None
        assert still["state"] == want, (loss, still)
        if want != seen[-1]:
            seen.append(want)
            transitions[want] = record
            # The transition carries the numbers that caused it: the engine's P&L is the
            # loss computed here from the fills and the chain's price.
            assert record["previous"] == seen[-2]
            assert record["rule"] == ("reduce_at_loss" if want == "REDUCING" else "halt_at_loss")
            assert abs(Decimal(record["pnl"]) + loss) < Decimal("0.05"), (record, loss)
            assert Decimal(record["baselineEquity"]) == CAPITAL
            assert record["thresholds"]["reduce_at_loss"] == str(REDUCE_AT)
            assert record["thresholds"]["halt_at_loss"] == str(HALT_AT)
            assert record["actor"] == "risk-engine"
        if want == "REDUCING" and "traded" not in transitions:
            # Buying more WETH increases exposure: refused, naming the rule and the state.
            topic, verdict = await desk.trade("ACQUIRE", "1")
            assert topic == "risk.rejected", verdict
            assert verdict["rule"] == "risk_state"
            assert verdict["actual"] == "increases exposure"
            assert "only exposure-reducing" in verdict["message"]
            # Selling part of the long reduces it: approved, and it settles on chain.
            before, _ = await desk.holdings()
            topic, verdict = await desk.trade("DISPOSE", "5")
            assert topic == "exec.completed", verdict
            after, _ = await desk.holdings()
            assert after == before - 5
            transitions["traded"] = {}
    assert seen == ["NORMAL", "REDUCING", "HALTED"]

    # HALTED: not even a sale passes.
    topic, verdict = await desk.trade("DISPOSE", "1")
    assert topic == "risk.rejected", verdict
    assert verdict["rule"] == "risk_state"
    assert verdict["actual"] == "HALTED"
