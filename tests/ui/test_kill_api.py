"""``POST /risk/kill``, ``POST /risk/resume``, ``GET /risk/kill`` over the real broker: the
operator token, what is published on ``sep.control``, the answers.  Strategies of this test's
own are killed (the broker is shared: a global kill would stop other tests' workers)."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from pipeline.breakers import machine
from pipeline.breakers.config import BreakersSpec
from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.control import kill_switch
from pipeline.control.keys import breaker_key, kill_key
from pipeline.control.publish import control_event
from pipeline.store.control_log import apply_control
from tests.ui.server import OPERATOR_AUTH as AUTH


async def test_kill_and_resume_need_the_operator_token(client: httpx.AsyncClient) -> None:
    body = {"strategyId": "nobody", "reason": "x"}
    for path in ("/risk/kill", "/risk/resume"):
        assert (await client.post(path, json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.post(path, json=body, headers=wrong)).status_code == 403


async def test_kill_then_resume_a_strategy(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    strategy = f"api-{uuid.uuid4().hex[:8]}"
    scope = f"strategy:{strategy}"
    body = {"strategyId": strategy, "reason": "drill 12", "actor": "ops-bob"}
    answer = await client.post("/risk/kill", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert done["changed"] is True
    event = done["event"]
    assert (event["topic"], event["correlationId"]) == ("control.killed", kill_key(scope))
    assert event["payload"] == {"scope": scope, "actor": "ops-bob", "reason": "drill 12"}
    [mine] = [s for s in done["killSwitches"] if s["scope"] == scope]
    assert (mine["engaged"], mine["actor"], mine["seq"]) == (True, "ops-bob", event["seq"])
    # What the workers read: the topic holds it.
    state = await kill_switch.read_state(ui_settings.kafka)
    assert state.killed(strategy) is not None

    again = (await client.post("/risk/kill", json=body, headers=AUTH)).json()
    assert (again["changed"], again["event"]) == (False, None)

    shown = (await client.get("/risk/kill")).json()
    assert any(s["scope"] == scope and s["engaged"] for s in shown["killSwitches"])

    resumed = await client.post(
        "/risk/resume", json={"strategyId": strategy, "reason": "over"}, headers=AUTH
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["event"]["topic"] == "control.resumed"
    assert resumed.json()["event"]["payload"]["actor"].startswith("operator@")
    assert (await kill_switch.read_state(ui_settings.kafka)).killed(strategy) is None
    twice = await client.post(
        "/risk/resume", json={"strategyId": strategy, "reason": "over"}, headers=AUTH
    )
    assert twice.status_code == 409
    assert twice.json()["error"] == "not_engaged"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"reason": ""}, "body.reason"),
        ({"reason": "   "}, "body.reason"),
        ({}, "body.reason"),
        ({"reason": "x", "strategyId": "bad\u0007id"}, "body.strategyId"),  # a control char
        ({"reason": "x", "typo": 1}, "body.typo"),
    ],
)
async def test_bad_bodies_are_refused_with_their_path(
    client: httpx.AsyncClient, body: dict[str, object], path: str
) -> None:
    answer = await client.post("/risk/kill", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert path in [e["path"] for e in answer.json()["errors"]]


async def test_metrics_show_the_switches_and_breakers_the_project_stored(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    """``GET /metrics`` reads the Redis ``control`` hash; filled here by ``apply_control``,
    what the project stage calls for every sep.control record."""
    strategy = f"met-{uuid.uuid4().hex[:8]}"
    body = {"strategyId": strategy, "reason": "gauges"}
    killed = (await client.post("/risk/kill", json=body, headers=AUTH)).json()["event"]
    opened = machine.trip(
        machine.initial(f"venue-{strategy}"),
        failures=3,
        last_reason="reverted",
        now_ms=1_000,
        policy=BreakersSpec().policy("sim"),
        actor="execute",
        why="test",
    )
    breaker = control_event(breaker_key(opened.venue), "venue.breaker_changed", opened, 1, 1_000)
    redis = aioredis.from_url(ui_settings.redis, decode_responses=True)
    try:
        await apply_control(
            redis, ui_settings.redis_prefix, [decode_event(orjson.dumps(killed)), breaker]
        )
    finally:
        await redis.aclose()
    text = (await client.get("/metrics")).text
    assert f'sep_kill_switch_engaged{{scope="strategy:{strategy}"}} 1' in text
    assert f'sep_venue_breaker_state{{venue="venue-{strategy}"}} 2' in text
    assert f'sep_venue_breaker_trips_total{{venue="venue-{strategy}"}} 1' in text
    await client.post("/risk/resume", json=body, headers=AUTH)
