"""``GET /deadletters`` over the real broker: dead letters made by the real ``dead_letter()``
with hostile bytes, read back with where they are, why, and a bounded preview; filtered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.config import Settings
from pipeline.limits import DEAD_LETTER_PREFIX_BYTES
from pipeline.models.events import FieldError
from pipeline.stages.rejections import dead_letter
from pipeline.store.deadletters import PREVIEW_BYTES
from tests.ui import hostile
from tests.ui.server import ServerThread


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as c:
        yield c


async def produce(settings: Settings, marker: str) -> dict[str, tuple[int, int]]:
    """Three dead letters; key -> (partition, offset) as the broker stored them."""
    cases = {
        f"{marker}-json": (
            b'{"strategyId": "' + hostile.MARKUP.encode() + b'"}',
            f"{marker}.strategyId: too long",
        ),
        f"{marker}-binary": (
            b"\x00\xff\xfe" + hostile.RTL.encode() + bytes(range(256)),
            f"{marker}.body: not JSON",
        ),
        f"{marker}-huge": (hostile.HUGE.encode(), f"{marker}.body: larger than 65536 bytes"),
    }
    placed = {}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, max_request_size=1 << 20)
    await producer.start()
    try:
        for key, (raw, reason) in cases.items():
            out = dead_letter(
                key,
                raw,
                reason=reason,
                source=f"sep.intents.submitted/0/{len(key)}",
                errors=[FieldError(path="strategyId", message=hostile.MARKUP)],
                correlation_id=f"intent-{key}",
            )
            meta = await producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=list(out.headers)
            )
            placed[key] = (meta.partition, meta.offset)
    finally:
        await producer.stop()
    return placed


async def test_read_back_where_why_and_a_bounded_preview(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    marker = f"dl{uuid.uuid4().hex[:8]}"
    placed = await produce(ui_settings, marker)
    body = (await client.get("/deadletters", params={"q": marker})).json()
    mine = {d["key"]: d for d in body["items"]}
    assert set(mine) == set(placed)
    for key, (partition, offset) in placed.items():
        d = mine[key]
        assert (d["topic"], d["partition"], d["offset"]) == ("sep.deadletter", partition, offset)
        assert d["reason"].startswith(marker)
        assert d["source"] == f"sep.intents.submitted/0/{len(key)}"
        assert d["correlationId"] == f"intent-{key}"
        assert d["errors"] == [{"path": "strategyId", "message": hostile.MARKUP}]
        assert d["previewBytes"] <= PREVIEW_BYTES
        assert len(d["previewHex"]) <= 1024
    huge = mine[f"{marker}-huge"]
    assert huge["truncated"] is True
    assert (huge["originalBytes"], huge["storedBytes"]) == (
        len(hostile.HUGE),
        DEAD_LETTER_PREFIX_BYTES,
    )
    assert len(huge["preview"]) == PREVIEW_BYTES
    binary = mine[f"{marker}-binary"]
    assert binary["previewHex"].startswith("00fffe")
    assert "\ufffd" in binary["preview"]  # invalid UTF-8 replaced, never passed through
    assert body["kinds"][f"{marker}.body"] == 2
    assert body["held"] >= 3


async def test_filter_by_kind(client: httpx.AsyncClient, ui_settings: Settings) -> None:
    marker = f"dl{uuid.uuid4().hex[:8]}"
    placed = await produce(ui_settings, marker)
    body = (await client.get("/deadletters", params={"kind": f"{marker}.body"})).json()
    assert {d["key"] for d in body["items"]} == {f"{marker}-binary", f"{marker}-huge"}
    assert len(placed) == 3
    bad = await client.get("/deadletters", params={"limit": "0"})
    assert bad.status_code == 422
    assert [e["path"] for e in bad.json()["errors"]] == ["query.limit"]
