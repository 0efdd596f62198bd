"""The REST API on a real uvicorn, over real Redis, PostgreSQL and Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.client import INPUT_TOPIC, predicted_intent_id
from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.models.events import Event
from pipeline.samples import submission
from pipeline.stages.base import Output, Record, StageContext
from pipeline.stages.ingest import build
from pipeline.topology import load_topology
from tests.store.lifecycle import TOPOLOGY, lifecycle, rejected, sim_venue
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread


@pytest.fixture(scope="module")
async def seeded(
    ui_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> list[list[Event]]:
    """Four completed intents (two strategies) and one risk rejection."""
    intents: list[list[Event]] = []
    async with sim_venue(Path(tmp_path_factory.mktemp("sim"))) as sim:
        for i in range(4):
            intents.append(
                await lifecycle(
                    sim,
                    100 + i,
                    strategy=("alpha", "beta")[i % 2],
                    at_ms=1_700_000_000_000 + i * 1000,
                )
            )
    intents.append(rejected(200, strategy="alpha"))
    await store_and_project(ui_settings, [e for events in intents for e in events])
    return intents


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        yield c


async def test_list_filter_and_paginate(
    client: httpx.AsyncClient, seeded: list[list[Event]]
) -> None:
    page = (await client.get("/intents", params={"limit": 2})).json()
    assert (page["total"], len(page["items"]), page["offset"]) == (5, 2, 0)
    assert page["streamId"] != "0-0"
    rest = (await client.get("/intents", params={"limit": 10, "offset": 2})).json()
    ids = [i["id"] for i in page["items"] + rest["items"]]
    assert sorted(ids) == sorted(e[0].correlation_id for e in seeded)
    alpha_done = (
        await client.get("/intents", params={"state": "completed", "strategy": "alpha"})
    ).json()
    assert alpha_done["total"] == 2
    assert {i["strategyId"] for i in alpha_done["items"]} == {"alpha"}
    risk = (await client.get("/intents", params={"state": "risk_rejected"})).json()
    assert [i["id"] for i in risk["items"]] == [seeded[4][0].correlation_id]
    assert risk["items"][0]["reason"].startswith("max_notional")


async def test_bad_query_is_422_with_paths(client: httpx.AsyncClient) -> None:
    r = await client.get("/intents", params={"limit": "0", "state": "nope"})
    assert r.status_code == 422
    assert {e["path"] for e in r.json()["errors"]} == {"query.limit", "query.state"}


async def test_intent_detail_agrees_with_the_event_store(
    client: httpx.AsyncClient, seeded: list[list[Event]]
) -> None:
    events = seeded[0]
    body = (await client.get(f"/intents/{events[0].correlation_id}")).json()
    assert body["intent"]["state"] == "completed"
    assert [e["eventId"] for e in body["events"]] == [e.event_id for e in events]
    assert body["events"][-1]["payload"] == events[-1].payload
    plan_id = events[4].payload["plan"]["id"]
    assert body["plan"]["id"] == plan_id
    plan = (await client.get(f"/plans/{plan_id}")).json()
    assert (plan["status"], plan["progress"]) == ("completed", "1.0000")
    assert (await client.get("/intents/intent-nope")).status_code == 404
    assert (await client.get("/intents/a%00b")).status_code == 404
    assert (await client.get("/plans/nope")).status_code == 404


async def test_positions_strategies_stats(
    client: httpx.AsyncClient, seeded: list[list[Event]]
) -> None:
    strategies = (await client.get("/strategies")).json()["strategies"]
    # Those seen in intents (producers of their own), and the topology's, which have none yet.
    assert [(s["strategyId"], s["intents"], s["source"]) for s in strategies] == [
        ("alpha", 3, "external"),
        ("beta", 2, "external"),
        ("dca", 0, "topology"),
        ("momentum", 0, "topology"),
    ]
    assert (
        strategies[1]["unrealisedPnl"]
        == (await client.get("/positions", params={"strategy": "beta"})).json()["positions"][0][
            "unrealisedPnl"
        ]
    )
    positions = (await client.get("/positions", params={"strategy": "beta"})).json()
    [beta] = positions["positions"]
    weth = next(a for a in beta["assets"] if a["asset"] == "WETH")
    assert Decimal(weth["quantity"]) == -2  # two DISPOSE 1 WETH fills
    assert isinstance(weth["unrealisedPnl"], str)
    stats = (await client.get("/stats")).json()
    assert (stats["intents"], stats["executed"], stats["active"]) == (5, 4, 0)
    assert stats["successRate"] == "0.8000"
    assert stats["stages"]["execute"] == 16


async def test_submit_produces_onto_the_input_topic(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    strategy = f"api-{uuid.uuid4().hex[:6]}"
    body = submission(
        TOPOLOGY, "DISPOSE", "WETH", "USDC", "0.5", strategy_id=strategy, client_intent_id="cid-1"
    )
    r = await client.post("/intents", json=body)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "submitted"
    record = await find_record(ui_settings.kafka, strategy)
    assert orjson.loads(record.value)["clientIntentId"] == "cid-1"
    assert accepted["intentId"] == predicted_intent_id(record.timestamp, strategy, "cid-1")
    assert r.headers["location"] == f"/intents/{accepted['intentId']}"


async def test_a_duplicate_submission_answers_the_existing_intent(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    strategy = f"api-{uuid.uuid4().hex[:6]}"
    body = submission(
        TOPOLOGY, "DISPOSE", "WETH", "USDC", "0.5", strategy_id=strategy, client_intent_id="cid-dup"
    )
    first = await client.post("/intents", json=body)
    again = await client.post("/intents", json=body)
    assert (first.status_code, first.json()["status"]) == (202, "submitted"), first.text
    assert (again.status_code, again.json()["status"]) == (200, "duplicate"), again.text
    assert again.json()["intentId"] == first.json()["intentId"]
    assert again.headers["location"] == f"/intents/{first.json()['intentId']}"
    # ...and the duplicate was not produced: one record for the pair on the input topic.
    records = await records_of(ui_settings.kafka, strategy)
    assert len(records) == 1
    # The id answered is the one derived from the record's timestamp, which the route chose.
    assert first.json()["intentId"] == predicted_intent_id(
        records[0].timestamp, strategy, "cid-dup"
    )

    # Ingest, claiming in the same store, turns that record into the answered intent.
    stage = build(StageContext(TOPOLOGY, ui_settings))
    await stage.start()
    sent: list[Event] = []

    async def emit(output: Output) -> None:
        sent.append(decode_event(output.value))

    try:
        r = records[0]
        await stage.process(
            [Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value or b"")], emit
        )
    finally:
        await stage.stop()
    assert [(e.topic, e.correlation_id) for e in sent if e.topic.startswith("intent.")] == [
        ("intent.submitted", first.json()["intentId"])
    ]


async def test_openapi_describes_the_duplicate_answer(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    post = doc["paths"]["/intents"]["post"]
    assert {"200", "202"} <= set(post["responses"])
    status = doc["components"]["schemas"]["Accepted"]["properties"]["status"]
    assert status == {"enum": ["submitted", "duplicate"]}


async def records_of(kafka: str, strategy: str) -> list[Any]:
    """Every record keyed ``strategy`` on the input topic, read to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    await consumer.start()
    try:
        partitions = load_topology().topic(INPUT_TOPIC).partitions
        parts = [TopicPartition(INPUT_TOPIC, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            found += [r for records in batch.values() for r in records if of(r, strategy)]
        return found
    finally:
        await consumer.stop()


def of(record: Any, strategy: str) -> bool:
    """Whether ``record`` is a submission of ``strategy`` (keyed by ``submission_key``)."""
    try:
        return bool(orjson.loads(record.value).get("strategyId") == strategy)
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return False


async def find_record(kafka: str, strategy: str) -> Any:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    await consumer.start()
    try:
        partitions = load_topology().topic(INPUT_TOPIC).partitions
        parts = [TopicPartition(INPUT_TOPIC, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if of(record, strategy):
                        return record
        raise AssertionError(f"no record for {strategy} on {INPUT_TOPIC}")
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        (b"{not json", {"body"}),
        (b"[]", {""}),
        (orjson.dumps({"strategyId": "x", "type": "SELL"}), {"type", "assets", "constraints"}),
    ],
)
async def test_bad_submission_is_422_with_field_paths(
    client: httpx.AsyncClient, body: bytes, paths: set[str]
) -> None:
    r = await client.post("/intents", content=body)
    assert r.status_code == 422
    assert {e["path"] for e in r.json()["errors"]} == paths


async def test_bad_amount_names_its_path(client: httpx.AsyncClient) -> None:
    body = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "a lot")
    body["constraints"]["maxSlippage"] = "lots"
    r = await client.post("/intents", json=body)
    assert r.status_code == 422
    paths = {e["path"] for e in r.json()["errors"]}
    assert "constraints.maxSlippage" in paths
    assert any(p.startswith("assets.0") for p in paths)


async def test_health_metrics_openapi(client: httpx.AsyncClient, seeded: list[list[Event]]) -> None:
    health = (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert set(health["dependencies"]) == {"kafka", "postgres", "redis"}
    assert health["eventStore"] == "postgresql (plain table)"
    assert health["mode"] == "live"  # the repository's topology: real transactions
    text = (await client.get("/metrics")).text
    assert 'sep_stage_events_total{stage="execute"} 16' in text
    assert 'sep_intents{state="completed"} 4' in text
    assert "sep_consumer_lag_up 1" in text
    doc = (await client.get("/openapi.json")).json()
    assert {
        "/intents",
        "/intents/{intentId}",
        "/plans/{planId}",
        "/positions",
        "/strategies",
        "/health",
        "/metrics",
    } <= set(doc["paths"])
    assert "IntentSubmission" in doc["components"]["schemas"]
