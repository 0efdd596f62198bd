"""The strategies API over the real broker and Redis: the listing, and enable / disable /
configure with the operator token, each one event on sep.control (nothing when refused)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis

from pipeline.config import Settings
from pipeline.control import keys
from pipeline.control.feed import ControlFeed
from pipeline.models.events import Event
from pipeline.store.control_log import apply_control
from tests.ui.server import OPERATOR_AUTH as AUTH

NEW = f"dca-ui-{uuid.uuid4().hex[:8]}"
CONFIG = {"asset": "WBTC", "quote": "USDC", "amount": "25", "interval_ms": 60_000}


async def control_seq(settings: Settings, key: str) -> int:
    feed = ControlFeed(settings.kafka)
    await feed.start()
    try:
        return feed.state.seq(key)
    finally:
        await feed.stop()


async def project(settings: Settings, event: dict[str, Any]) -> None:
    """What the project stage does with a control event: the Redis control hash."""
    client = aioredis.from_url(settings.redis)
    try:
        await apply_control(client, settings.redis_prefix, [Event.model_validate(event)])
    finally:
        await client.aclose()


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["strategyId"]: s for s in body["strategies"]}


async def test_the_topology_strategies_are_listed(client: httpx.AsyncClient) -> None:
    rows = by_id((await client.get("/strategies")).json())
    dca = rows["dca"]
    assert (dca["plugin"], dca["source"], dca["intents"], dca["killed"]) == (
        "dca",
        "topology",
        0,
        None,
    )
    assert dca["config"]["interval_ms"] == 30_000
    assert rows["momentum"]["plugin"] == "momentum"


async def test_changes_need_the_operator_token(client: httpx.AsyncClient) -> None:
    body = {"actor": "ops", "reason": "test"}
    assert (await client.post("/strategies/dca/disable", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        await client.post("/strategies/dca/disable", json=body, headers=wrong)
    ).status_code == 403


async def test_enable_a_new_strategy_then_disable_it(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    body = {"actor": "ops-alice", "reason": "add BTC", "plugin": "dca", "config": CONFIG}
    response = await client.post(f"/strategies/{NEW}/enable", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    enabled = response.json()
    assert (enabled["topic"], enabled["correlationId"]) == ("strategy.enabled", f"strategy/{NEW}")
    assert enabled["payload"]["config"] == CONFIG
    assert await control_seq(ui_settings, keys.strategy_key(NEW)) == enabled["seq"]

    response = await client.post(
        f"/strategies/{NEW}/disable", json={"actor": "ops-bob", "reason": "pause"}, headers=AUTH
    )
    assert response.status_code == 202, response.text
    disabled = response.json()
    assert disabled["seq"] == enabled["seq"] + 1
    assert (disabled["payload"]["enabled"], disabled["payload"]["config"]) == (False, CONFIG)

    await project(ui_settings, disabled)
    row = by_id((await client.get("/strategies")).json())[NEW]
    assert (row["enabled"], row["source"], row["changedBy"], row["reason"]) == (
        False,
        "control",
        "ops-bob",
        "pause",
    )
    assert row["changedAt"] is not None


async def test_a_refused_config_publishes_nothing(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    before = await control_seq(ui_settings, keys.strategy_key("dca"))
    response = await client.post(
        "/strategies/dca/configure",
        json={"actor": "ops", "reason": "typo", "config": {"amount": "-5"}},
        headers=AUTH,
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["path"] == "plugins.strategies.dca.config.amount"
    bad = await client.post(
        "/strategies/nope/disable", json={"actor": "o", "reason": "r"}, headers=AUTH
    )
    assert bad.status_code == 422
    assert "no strategy 'nope'" in bad.json()["errors"][0]["message"]
    assert await control_seq(ui_settings, keys.strategy_key("dca")) == before
