"""WS /stream on a real uvicorn and Redis: backlog then live tail, in order, no duplicates."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pipeline.config import Settings
from pipeline.models.events import Event
from pipeline.plugins.venue import Venue
from tests.store.lifecycle import lifecycle, sim_venue
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread


def ws_url(server: ServerThread) -> str:
    return server.url.replace("http://", "ws://") + "/stream"


async def frame(ws: ClientConnection, wait_s: float = 10) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), wait_s))
    return result


async def changes_until(
    ws: ClientConnection, predicate: Any, wait_s: float = 15
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(wait_s):
        while True:
            f = await frame(ws)
            if f["type"] == "change":
                out.append(f)
                if predicate(out):
                    return out


@pytest.fixture(scope="module")
async def venue(tmp_path_factory: pytest.TempPathFactory) -> Any:
    async with sim_venue(Path(tmp_path_factory.mktemp("sim"))) as sim:
        yield sim


async def intents(venue: Venue, first: int, n: int, at_ms: int) -> list[list[Event]]:
    return [await lifecycle(venue, first + i, strategy="ws", at_ms=at_ms + i) for i in range(n)]


async def test_bad_frames_get_an_error_and_the_socket_stays(server: ServerThread) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send("not json")
        assert (await frame(ws))["type"] == "error"
        await ws.send(
            orjson.dumps(
                {"action": "subscribe", "topics": [], "after": "nope", "extra": 1}
            ).decode()
        )
        error = await frame(ws)
        assert error["type"] == "error"
        assert {e["path"] for e in error["errors"]} == {"topics", "after", "extra"}
        await ws.send(orjson.dumps({"action": "ping"}).decode())
        assert (await frame(ws))["type"] == "pong"


async def test_backlog_filtered_then_live_in_order(
    server: ServerThread, ui_settings: Settings, venue: Venue
) -> None:
    first, second = await intents(venue, 300, 2, 1_700_000_100_000)
    await store_and_project(ui_settings, first + second)
    target = first[0].correlation_id
    async with connect(ws_url(server)) as ws:
        await ws.send(
            orjson.dumps(
                {
                    "action": "subscribe",
                    "topics": ["exec.*", "plan.*"],
                    "correlationId": target,
                    "after": "0-0",
                }
            ).decode()
        )
        assert (await frame(ws))["type"] == "subscribed"
        backlog = []
        while (f := await frame(ws))["type"] == "change":
            backlog.append(f)
        assert f["type"] == "caught_up"
        assert [(c["seq"], c["topic"]) for c in backlog] == [
            (e.seq, e.topic) for e in first if e.topic.startswith(("exec.", "plan."))
        ]
        assert backlog[-1]["state"] == "completed"
        assert backlog[-1]["data"]["realisedSlippage"] == first[-1].payload["realisedSlippage"]


async def test_live_tail_then_resume_after_a_drop(
    server: ServerThread, ui_settings: Settings, venue: Venue
) -> None:
    batch = await intents(venue, 400, 3, 1_700_000_200_000)
    ids = {events[0].correlation_id for events in batch}
    async with connect(ws_url(server)) as ws:
        await ws.send(orjson.dumps({"action": "subscribe", "topics": ["*"]}).decode())
        assert (await frame(ws))["type"] == "subscribed"
        assert (await frame(ws))["type"] == "caught_up"
        await store_and_project(ui_settings, batch[0])
        live = await changes_until(ws, lambda got: len(got) == 9)
    assert [c["seq"] for c in live] == list(range(1, 10))
    last_seen = live[-1]["id"]
    # While nobody listens, two more intents happen; resuming from the last id gets them all.
    await store_and_project(ui_settings, batch[1] + batch[2])
    async with connect(ws_url(server)) as ws:
        await ws.send(
            orjson.dumps({"action": "subscribe", "topics": ["*"], "after": last_seen}).decode()
        )
        assert (await frame(ws))["type"] == "subscribed"
        missed = await changes_until(ws, lambda got: len(got) == 18)
    assert {c["intentId"] for c in live + missed} == ids
    for events in batch[1:]:
        mine = [c["seq"] for c in missed if c["intentId"] == events[0].correlation_id]
        assert mine == list(range(1, 10))


async def test_handover_under_concurrent_writes_has_no_gap_or_duplicate(
    server: ServerThread, ui_settings: Settings, venue: Venue
) -> None:
    batch = await intents(venue, 500, 12, 1_700_000_300_000)
    from pipeline.store.changes import ChangeStream
    from pipeline.store.readmodel import ReadModel

    model = ReadModel.connect(ui_settings.redis, ui_settings.redis_prefix)
    start = await ChangeStream(model.redis, ui_settings.redis_prefix).head()
    await model.close()

    async def write() -> None:
        for events in batch:  # a few events at a time, while the client subscribes
            for i in range(0, 9, 3):
                await store_and_project(ui_settings, events[i : i + 3])

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.05)
    async with connect(ws_url(server)) as ws:
        await ws.send(orjson.dumps({"action": "subscribe", "after": start}).decode())
        got = await changes_until(ws, lambda got: len(got) == 9 * len(batch), wait_s=60)
        await writer
        await asyncio.sleep(0.3)
        with pytest.raises(TimeoutError):  # and nothing more: no duplicate arrives late
            await frame(ws, wait_s=0.5)
    keys = [tuple(map(int, c["id"].split("-"))) for c in got]
    assert keys == sorted(set(keys))
    by_intent: dict[str, list[int]] = {}
    for c in got:
        by_intent.setdefault(c["intentId"], []).append(c["seq"])
    assert all(seqs == list(range(1, 10)) for seqs in by_intent.values())
    assert len(by_intent) == len(batch)
