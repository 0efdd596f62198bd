"""The risk engine on the real broker with two workers: limits changed at run time through the
control topic, exposure seen across workers (validate's 8 partitions are split between them,
so consecutive intents of one strategy are judged by either), a breaker tripped by a worker's
engine and obeyed by both, and the picture ``GET /risk`` reads (control hash + usage)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.risk import actions
from pipeline.risk.status import risk_status
from pipeline.samples import submission
from pipeline.store import risk_usage
from pipeline.store.control_log import latest_control
from pipeline.topology import load_topology

TOPOLOGY = load_topology()


@pytest.fixture(scope="module")
def pool(prepared: Settings) -> Iterator[WorkerPool]:
    workers = WorkerPool(prepared, count=2)
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


class Desk:
    def __init__(self, settings: Settings, pool: WorkerPool, producer: IntentProducer) -> None:
        self.settings, self.pool, self.producer = settings, pool, producer
        self.n = 0

    async def trade(self, strategy: str, kind: str, amount: str) -> tuple[str, dict[str, Any]]:
        """One intent, run to its end: (its terminal event type, its risk event's payload)."""
        self.n += 1
        client_id = f"{strategy}-{self.n}"
        body = submission(
            TOPOLOGY,
            kind,
            "WETH",
            "USDC",
            amount,
            strategy_id=strategy,
            client_intent_id=client_id,
            max_slippage="0.05",
            venues=["sim"],
        )
        stamp, delivery = await self.producer.send(body)
        await delivery
        intent_id = predicted_intent_id(stamp, strategy, client_id)
        done = await wait_until_finished(self.settings.postgres, [intent_id], 90, self.pool)
        conn = await asyncpg.connect(self.settings.postgres)
        try:
            row = await conn.fetchrow(
                "SELECT payload FROM events WHERE correlation_id = $1 "
                "AND topic IN ('risk.approved', 'risk.rejected')",
                intent_id,
            )
        finally:
            await conn.close()
        assert row is not None
        return done[intent_id], orjson.loads(row["payload"])

    async def control(self) -> dict[str, dict[str, Any]]:
        client = aioredis.from_url(self.settings.redis, decode_responses=True)
        try:
            return await latest_control(client, self.settings.redis_prefix)
        finally:
            await client.aclose()

    async def wait_control(self, key: str, ok: Any, within_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            event = (await self.control()).get(key)
            if event is not None and ok(event["payload"]):
                return event
            await asyncio.sleep(0.2)
        raise TimeoutError(
            f"{key} never satisfied the condition: {(await self.control()).get(key)}\n"
            f"{self.pool.log_tail()}"
        )


async def test_limits_exposure_and_breakers_across_two_workers(
    prepared: Settings, pool: WorkerPool
) -> None:
    run = uuid.uuid4().hex[:6]
    sized, losing = f"risk-size-{run}", f"risk-loss-{run}"
    kafka = prepared.kafka
    # Run-time limits, through the control topic as `sep risk limits set` does.
    await actions.set_limits(
        kafka, sized, {"max_position": "10000"}, actor="e2e", reason="a tight position limit"
    )
    await actions.set_limits(
        kafka,
        losing,
        {"reduce_at_loss": "0.5", "halt_at_loss": "100000"},
        actor="e2e",
        reason="a breaker that trips on fees",
    )
    async with IntentProducer(kafka) as producer:
        desk = Desk(prepared, pool, producer)
        limits = await desk.wait_control(f"limits/{sized}", lambda p: "max_position" in p["limits"])
        assert limits["payload"]["actor"] == "e2e"
        await asyncio.sleep(1.0)  # every worker's control feed has it (it follows the topic)

        # Exposure: 1 WETH at a time (~3,000 USDC each), judged by whichever worker holds the
        # intent's partition; each must count what the other approved and filled.
        outcomes = [await desk.trade(sized, "ACQUIRE", "1") for _ in range(3)]
        assert [o[0] for o in outcomes] == ["exec.completed"] * 3, outcomes
        topic, verdict = await desk.trade(sized, "ACQUIRE", "1")
        assert topic == "risk.rejected"
        assert verdict["rule"] == "max_position"
        assert verdict["limit"] == "10000.00"
        assert 11_000 < float(verdict["actual"]) < 13_000  # 4 WETH at the mark
        assert f"{sized}'s WETH position would be 4 WETH" in verdict["message"]
        assert (await desk.trade(sized, "DISPOSE", "1"))[0] == "exec.completed"  # reduces

        # A breaker: buying costs fees and price impact, a loss above 0.5 USDC: a worker's
        # engine publishes REDUCING on sep.control, project stores it, every worker obeys.
        assert (await desk.trade(losing, "ACQUIRE", "2"))[0] == "exec.completed"
        change = await desk.wait_control(
            f"risk/strategy:{losing}", lambda p: p["state"] == "REDUCING"
        )
        record = change["payload"]
        assert record["rule"] == "reduce_at_loss"
        assert record["previous"] == "NORMAL"
        assert float(record["pnl"]) <= -0.5
        assert record["thresholds"]["reduce_at_loss"] == "0.5"
        await asyncio.sleep(1.0)
        for _ in range(2):  # whichever worker judges it
            topic, verdict = await desk.trade(losing, "ACQUIRE", "0.1")
            assert topic == "risk.rejected"
            assert verdict["rule"] == "risk_state"
            assert verdict["actual"] == "increases exposure"
        assert (await desk.trade(losing, "DISPOSE", "0.5"))[0] == "exec.completed"

        # An operator's reset: NORMAL again, a new epoch whose baseline a worker publishes.
        await actions.reset(kafka, f"strategy:{losing}", actor="e2e", reason="reviewed")
        epoch = await desk.wait_control(f"risk/strategy:{losing}", lambda p: p["rule"] == "epoch")
        assert epoch["payload"]["state"] == "NORMAL"
        assert epoch["payload"]["baselineEquity"] is not None

    # What GET /risk shows: states, limits against usage, from Redis alone.
    client = aioredis.from_url(prepared.redis, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while (usage := await risk_usage.read(client, prepared.redis_prefix)) is None or (
            sized not in usage["strategies"]
        ):
            assert time.monotonic() < deadline, "no usage report from the workers"
            await asyncio.sleep(0.2)
        control = await latest_control(client, prepared.redis_prefix)
    finally:
        await client.aclose()
    status = risk_status(TOPOLOGY, control, usage)
    by_id = {s["strategyId"]: s for s in status["strategies"]}
    assert by_id[sized]["limits"]["max_position"] == "10000"
    assert by_id[sized]["overrides"] == {"max_position": "10000"}
    held = by_id[sized]["usage"]["positions"]["WETH"]["held"]
    assert held.startswith("2")  # bought 3, sold 1
    assert by_id[losing]["state"] == "NORMAL"
