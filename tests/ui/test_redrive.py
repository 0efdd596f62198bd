"""Re-driving dead letters over the real broker and PostgreSQL: only those that failed for a
passing reason, only with the operator token, once each (even when two ask at once), back on
their original topic with their original key and bytes, recorded as an operator event."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.config import Settings
from pipeline.intent_ids import submission_key
from pipeline.limits import DEAD_LETTER_PREFIX_BYTES
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Record
from pipeline.stages.ingest import ingest_record
from pipeline.stages.rejections import dead_letter
from pipeline.store.eventstore import EventStore
from pipeline.store.redrive import HEADER
from tests.store.lifecycle import INGESTED, TOPOLOGY
from tests.ui.server import OPERATOR_AUTH as AUTH
from tests.ui.server import ServerThread

WHO = {"operator": "ops-alice", "note": "redis was restarted"}


def body_of(marker: str, i: int = 0) -> bytes:
    return orjson.dumps(
        submission(
            TOPOLOGY,
            "DISPOSE",
            "WETH",
            "USDC",
            "0.1",
            strategy_id=f"{marker}-s",
            client_intent_id=f"{marker}-{i}",
        )
    )


async def place(settings: Settings, marker: str) -> dict[str, tuple[int, int]]:
    """Dead letters made by the real ``dead_letter()``; name -> (partition, offset)."""
    ingested = ingest_record(
        Record("sep.intents.submitted", 0, 7, 1_700_000_000_000, b"k", body_of(marker, 9)),
        MemoryTable(),
        1_700_000_000_000,
        topic=INGESTED,
    ).outputs[0]
    passing = f"validate failed: ConnectionError('redis away') {marker}"
    cases = {
        "submitted": (body_of(marker), passing, "sep.intents.submitted/3/17", ""),
        "twice": (body_of(marker, 1), passing, "sep.intents.submitted/1/4", ""),
        "ingested": (
            ingested.value,
            f"project failed: PostgresError {marker}",
            f"{INGESTED}/2/40",
            "",
        ),
        "schema": (
            body_of(marker, 2),
            f"strategyId: too long {marker}",
            "sep.intents.submitted/0/5",
            "intent-x",
        ),
        "truncated": (
            b"{" + b" " * DEAD_LETTER_PREFIX_BYTES + b"}",
            passing,
            "sep.intents.submitted/0/6",
            "",
        ),
        "market": (body_of(marker, 3), passing, "sep.market.books/0/1", ""),  # no stage reads it
    }
    placed = {}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, max_request_size=1 << 20)
    await producer.start()
    try:
        for name, (raw, reason, source, correlation) in cases.items():
            out = dead_letter(
                f"{marker}-{name}",
                raw,
                reason=reason,
                errors=(),
                source=source,
                correlation_id=correlation,
            )
            meta = await producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=list(out.headers)
            )
            placed[name] = (meta.partition, meta.offset)
    finally:
        await producer.stop()
    return placed


@pytest.fixture(scope="module")
async def placed(ui_settings: Settings) -> tuple[str, dict[str, tuple[int, int]]]:
    marker = f"rd{uuid.uuid4().hex[:8]}"
    return marker, await place(ui_settings, marker)


async def record_at(settings: Settings, topic: str, partition: int, offset: int) -> Any:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for _ in range(50):
            for r in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                if r.offset == offset:
                    return r
        raise AssertionError(f"nothing at {topic}/{partition}/{offset}")
    finally:
        await consumer.stop()


def url(at: tuple[int, int]) -> str:
    return f"/deadletters/{at[0]}/{at[1]}/redrive"


async def test_the_listing_says_which_may_be_redriven(
    client: httpx.AsyncClient, placed: tuple[str, dict[str, tuple[int, int]]]
) -> None:
    marker, _where = placed
    items = (await client.get("/deadletters", params={"q": marker})).json()["items"]
    by_key = {d["key"].removeprefix(f"{marker}-"): d for d in items}
    assert {k for k, d in by_key.items() if d["redrivable"]} == {"submitted", "twice", "ingested"}
    assert "passing reason" in by_key["schema"]["notRedrivable"]
    assert "prefix" in by_key["truncated"]["notRedrivable"]
    assert "not a topic a stage consumes" in by_key["market"]["notRedrivable"]
    assert all(d["redriven"] is None for d in items)


async def test_the_operator_token_is_required(
    client: httpx.AsyncClient, server: ServerThread, placed: tuple[str, dict[str, tuple[int, int]]]
) -> None:
    at = placed[1]["submitted"]
    missing = await client.post(url(at), json=WHO)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = await client.post(url(at), json=WHO, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as tokenless:
        off = await tokenless.post(url(at), json=WHO, headers=AUTH)  # no token configured
    assert off.status_code == 403
    assert "SEP_OPERATOR_TOKEN" in off.json()["message"]
    bad = await client.post(url(at), json={"operator": ""}, headers=AUTH)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "body.operator"


async def test_redrive_puts_the_record_back_once_and_records_it(
    client: httpx.AsyncClient, ui_settings: Settings, placed: tuple[str, dict[str, tuple[int, int]]]
) -> None:
    marker, where = placed
    store = await EventStore.connect(ui_settings.postgres)
    events_before = await store.count()
    await store.close()

    response = await client.post(url(where["submitted"]), json=WHO, headers=AUTH)
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["topic"] == "deadletter.redriven"
    p = event["payload"]
    assert (p["operator"], p["note"]) == (WHO["operator"], WHO["note"])
    assert (p["deadLetter"]["partition"], p["deadLetter"]["offset"]) == where["submitted"]
    assert p["source"] == {"topic": "sep.intents.submitted", "partition": 3, "offset": 17}
    to = p["redrivenTo"]
    assert to["topic"] == "sep.intents.submitted"
    record = await record_at(ui_settings, to["topic"], to["partition"], to["offset"])
    assert record.value == body_of(marker)  # the same bytes, keyed as a producer keys them
    assert record.key == submission_key(f"{marker}-s", f"{marker}-0").encode()
    assert dict(record.headers)[HEADER] == (
        f"sep.deadletter/{where['submitted'][0]}/{where['submitted'][1]}".encode()
    )
    assert record.timestamp == to["timestamp"]

    again = await client.post(url(where["submitted"]), json=WHO, headers=AUTH)
    assert again.status_code == 409
    assert again.json()["error"] == "already_redriven"
    assert again.json()["event"]["eventId"] == event["eventId"]

    # An event of an intent's topic goes back keyed by its intent, as the stage keyed it.
    ingested = (await client.post(url(where["ingested"]), json=WHO, headers=AUTH)).json()
    to = ingested["payload"]["redrivenTo"]
    assert to["topic"] == INGESTED
    record = await record_at(ui_settings, to["topic"], to["partition"], to["offset"])
    correlation = orjson.loads(record.value)["correlationId"]
    assert record.key == correlation.encode()
    assert ingested["correlationId"] == correlation

    for name, error in (
        ("schema", "not_redrivable"),
        ("truncated", "not_redrivable"),
        ("market", "not_redrivable"),
    ):
        refused = await client.post(url(where[name]), json=WHO, headers=AUTH)
        assert (refused.status_code, refused.json()["error"]) == (409, error), name
    gone = await client.post(f"/deadletters/0/{10**12}/redrive", json=WHO, headers=AUTH)
    assert gone.status_code == 404

    # Recorded apart from the intents' events: a replay's input did not change.
    conn = await asyncpg.connect(ui_settings.postgres)
    try:
        rows = await conn.fetch(
            "SELECT event_id FROM operator_events WHERE topic = $1", "deadletter.redriven"
        )
        assert {r["event_id"] for r in rows} == {event["eventId"], ingested["eventId"]}
        assert await conn.fetchval("SELECT count(*) FROM events") == events_before
    finally:
        await conn.close()
    items = (await client.get("/deadletters", params={"q": marker})).json()["items"]
    shown = {d["key"].removeprefix(f"{marker}-"): d["redriven"] for d in items}
    assert shown["submitted"]["eventId"] == event["eventId"]
    assert shown["twice"] is None


async def test_two_operators_at_once_redrive_it_once(
    client: httpx.AsyncClient, ui_settings: Settings, placed: tuple[str, dict[str, tuple[int, int]]]
) -> None:
    at = placed[1]["twice"]
    answers = await asyncio.gather(
        *(client.post(url(at), json=WHO, headers=AUTH) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    [won] = [a.json() for a in answers if a.status_code == 200]
    to = won["payload"]["redrivenTo"]
    consumer = AIOKafkaConsumer(bootstrap_servers=ui_settings.kafka)
    await consumer.start()
    try:
        tp = TopicPartition(to["topic"], to["partition"])
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    # Nothing of this key was produced after the one re-drive (the others were refused first).
    for offset in range(to["offset"] + 1, end):
        r = await record_at(ui_settings, to["topic"], to["partition"], offset)
        assert (
            r.value
            != (await record_at(ui_settings, to["topic"], to["partition"], to["offset"])).value
        )
