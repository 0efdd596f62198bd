"""``GET /risk``, ``PUT /risk/limits/{strategy}``, ``POST /risk/reset`` and the risk gauges of
``/metrics``, over the real broker and Redis: actions need the operator token, are checked
before anything is published, and land on the control topic with who and why."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import redis.asyncio as aioredis

from pipeline.config import Settings
from pipeline.control.keys import breaker_key, kill_key, risk_key
from pipeline.control.publish import control_event
from pipeline.models.breakers import VenueBreakerChanged
from pipeline.models.control import KillSwitchChanged, RiskStateChanged
from pipeline.store import risk_usage
from pipeline.store.control_log import apply_control
from tests.ui.server import OPERATOR_AUTH as AUTH

HOSTILE = "evil<script>alert(1)</script>\u202e"


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


def families(exposition: str) -> tuple[list[str], dict[str, int]]:
    """(every ``# TYPE`` name, in order; series -> how often it appears)."""
    declared = [line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE")]
    series: dict[str, int] = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name = line.rsplit(" ", 1)[0]
            series[name] = series.get(name, 0) + 1
    return declared, series


async def test_metrics_of_the_risk_engine_and_the_kill_switch_in_one_scrape(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    """The two parts' gauges side by side: each family declared once, each series once, every
    sample under a declared family, and a kill switch reported by one family, not two."""
    strategy = f"m-{uuid.uuid4().hex[:6]}"
    scope = f"strategy:{strategy}"
    kill = KillSwitchChanged(scope=scope, actor="ops", reason="drill")
    opened = VenueBreakerChanged(
        venue=f"v-{strategy}",
        state="open",
        previous="closed",
        failures=3,
        since_ms=1,
        trips=2,
        actor="execute",
        reason="3 failures",
    )
    redis = aioredis.from_url(ui_settings.redis, decode_responses=True)
    try:
        await apply_control(
            redis,
            ui_settings.redis_prefix,
            [
                control_event(kill_key(scope), "control.killed", kill, 1, 1_000),
                control_event(breaker_key(opened.venue), "venue.breaker_changed", opened, 1, 1),
            ],
        )
    finally:
        await redis.aclose()
    text = (await client.get("/metrics")).text
    declared, series = families(text)
    assert len(declared) == len(set(declared)), sorted(d for d in declared if declared.count(d) > 1)
    assert {s for s, n in series.items() if n > 1} == set()
    suffixes = ("_bucket", "_sum", "_count")
    for name in {s.split("{", 1)[0] for s in series}:
        base = next((name.removesuffix(x) for x in suffixes if name.endswith(x)), name)
        assert name in declared or base in declared, f"{name} has no # TYPE"
    assert "sep_risk_state" in declared  # the risk engine's part
    assert series[f'sep_kill_switch_engaged{{scope="{scope}"}}'] == 1  # the kill switch's
    assert f'sep_kill_switch_engaged{{scope="{scope}"}} 1' in text
    assert f'sep_venue_breaker_state{{venue="{opened.venue}"}} 2' in text
    kill_series = [s for s in series if f'scope="{scope}"' in s and "kill" in s]
    assert kill_series == [f'sep_kill_switch_engaged{{scope="{scope}"}}'], kill_series
    # GET /risk carries the same switch and breaker.
    status = (await client.get("/risk")).json()
    assert status["killSwitch"]["strategies"][strategy]["engaged"] is True
    assert status["breakers"][opened.venue]["state"] == "open"
    (mine,) = [s for s in status["strategies"] if s["strategyId"] == strategy]
    assert mine["killed"]["scope"] == scope
