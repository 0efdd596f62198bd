"""``GET /risk``, ``PUT /risk/limits/{strategy}``, ``POST /risk/reset`` and the risk gauges of
``/metrics``, over the real broker and Redis: actions need the operator token, are checked
before anything is published, and land on the control topic with who and why."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis

from pipeline.config import Settings
from pipeline.control.keys import risk_key
from pipeline.control.publish import control_event
from pipeline.models.control import RiskStateChanged
from pipeline.store import risk_usage
from pipeline.store.control_log import apply_control
from tests.ui.server import ServerThread

TOKEN = "t0ken-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = "evil<script>alert(1)</script>\u202e"


@pytest.fixture(scope="module")
def operator_server(ui_settings: Settings) -> Iterator[ServerThread]:
    thread = ServerThread(dataclasses.replace(ui_settings, operator_token=TOKEN))
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
async def client(operator_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=operator_server.url, timeout=40) as c:
        yield c


async def test_limit_changes_need_the_token_and_valid_rules(client: httpx.AsyncClient) -> None:
    strategy = f"s-{uuid.uuid4().hex[:6]}"
    body = {"limits": {"max_position": "250000"}, "reason": "desk limits", "actor": "ops-alice"}
    assert (await client.put(f"/risk/limits/{strategy}", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        await client.put(f"/risk/limits/{strategy}", json=body, headers=wrong)
    ).status_code == 403
    bad = await client.put(
        f"/risk/limits/{strategy}", json={**body, "limits": {"max_positon": "1"}}, headers=AUTH
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "body.limits.max_positon"
    no_reason = await client.put(f"/risk/limits/{strategy}", json={"limits": {}}, headers=AUTH)
    assert no_reason.status_code == 422
    first = await client.put(f"/risk/limits/{strategy}", json=body, headers=AUTH)
    assert first.status_code == 200, first.text
    event = first.json()
    assert (event["topic"], event["correlationId"], event["seq"]) == (
        "risk.limits_changed",
        f"limits/{strategy}",
        1,
    )
    assert event["payload"]["actor"] == "ops-alice"
    more = {"limits": {"max_open_intents": "5"}, "reason": "fewer at once"}
    second = (await client.put(f"/risk/limits/{strategy}", json=more, headers=AUTH)).json()
    assert second["seq"] == 2
    assert second["payload"]["limits"] == {"max_position": "250000", "max_open_intents": "5"}


async def test_reset_names_a_scope(client: httpx.AsyncClient) -> None:
    bad = await client.post("/risk/reset", json={"scope": "dca", "reason": "x"}, headers=AUTH)
    assert bad.status_code == 422
    scope = f"strategy:r-{uuid.uuid4().hex[:6]}"
    done = await client.post(
        "/risk/reset", json={"scope": scope, "reason": "reviewed"}, headers=AUTH
    )
    assert done.status_code == 200, done.text
    payload = done.json()["payload"]
    assert (payload["state"], payload["rule"], payload["actor"]) == ("NORMAL", "reset", "api")


async def test_get_risk_and_metrics_show_states_limits_and_usage(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    scope = f"strategy:{HOSTILE}"
    record = RiskStateChanged(
        scope=scope,
        state="REDUCING",
        previous="NORMAL",
        rule="reduce_at_loss",
        message="loss 600.00 USDC reached reduce_at_loss 500.00 USDC",
        epoch_ms=1,
        equity=Decimal(9400),
        baseline_equity=Decimal(10000),
        pnl=Decimal(-600),
        limit="500",
        actual="600",
        actor="risk-engine",
        reason="loss",
    )
    redis = aioredis.from_url(ui_settings.redis, decode_responses=True)
    try:
        await apply_control(
            redis,
            ui_settings.redis_prefix,
            [control_event(risk_key(scope), "risk.state_changed", record, 1, 1_000)],
        )
        await risk_usage.publish(
            redis,
            ui_settings.redis_prefix,
            {
                "at": 5,
                "quoteAsset": "USDC",
                "marks": {"WETH": {"price": "2950", "ageMs": 3, "source": "sim/p"}},
                "strategies": {
                    HOSTILE: {
                        "limits": {},
                        "usage": {
                            "openIntents": 3,
                            "tradedToday": "100",
                            "largestPosition": "4000",
                            "concentration": "0.0004",
                        },
                    }
                },
                "scopes": {scope: {"pnl": "-600", "equity": "9400", "drawdown": "0.06"}},
            },
        )
    finally:
        await redis.aclose()
    status = (await client.get("/risk")).json()
    (mine,) = [s for s in status["strategies"] if s["strategyId"] == HOSTILE]
    assert mine["state"] == "REDUCING"
    assert mine["change"]["limit"] == "500"
    assert mine["limits"]["max_position"] == "5000000"  # the topology's default
    assert mine["usage"]["openIntents"] == 3
    assert status["marks"]["WETH"]["price"] == "2950"
    metrics = (await client.get("/metrics")).text
    label = HOSTILE.replace('"', '\\"')
    assert f'sep_risk_state{{scope="strategy:{label}"}} 1' in metrics
    assert f'sep_risk_usage{{strategy="{label}",rule="max_open_intents"}} 3' in metrics
    assert f'sep_risk_pnl{{scope="strategy:{label}"}} -600' in metrics
    assert "sep_risk_usage_up 1" in metrics
