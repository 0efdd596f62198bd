"""The pipeline view against the real pipeline: it agrees with ``sep status`` and ``/metrics``
under load, its figures move while intents flow, and it is pushed over ``WS /stream/pipeline``."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.samples import submission
from pipeline.status import collect_status
from pipeline.store.projection import STAGE_OF
from tests.store.lifecycle import TOPOLOGY
from tests.ui.server import ServerThread
from ui.pipeline import percentile

COUNT = 40
SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def test_percentile_interpolates_inside_the_bucket() -> None:
    # 10 observations: 5 in (0, 0.005], 4 in (0.005, 0.01], 1 past the last bound.
    hist = {"0.005": 5.0, "0.01": 4.0, "+Inf": 1.0, "count": 10.0, "sum": 99.0}
    assert percentile(hist, 0.5) == pytest.approx(0.005)
    assert percentile(hist, 0.7) == pytest.approx(0.0075)
    assert percentile(hist, 0.99) == 30.0  # past the last bound: the last bound
    assert percentile({}, 0.5) is None


def prometheus(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out.setdefault(m.group(1), {})[labels] = float(m.group(3))
    return out


@pytest.fixture(scope="module")
def workers(ui_settings: Settings) -> Iterator[WorkerPool]:
    pool = WorkerPool(ui_settings, count=1)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as c:
        yield c


async def drive_load(settings: Settings, count: int, rate: float) -> list[str]:
    strategy = f"load-{uuid.uuid4().hex[:6]}"
    ids = []
    async with IntentProducer(settings.kafka) as producer:
        for i in range(count):
            body = submission(
                TOPOLOGY,
                ("DISPOSE", "ACQUIRE")[i % 2],
                "WETH",
                "USDC",
                "0.05",
                strategy_id=strategy,
                client_intent_id=f"{strategy}-{i}",
                max_slippage="0.03",
                venues=["sim"],
            )
            stamp, delivery = await producer.send(body)
            await delivery
            ids.append(predicted_intent_id(stamp, strategy, f"{strategy}-{i}"))
            await asyncio.sleep(1 / rate)
    return ids


async def test_agrees_with_sep_status_and_metrics_under_load(
    client: httpx.AsyncClient, server: ServerThread, workers: WorkerPool, ui_settings: Settings
) -> None:
    first = (await client.get("/pipeline")).json()
    assert {s["name"] for s in first["stages"]} == {
        "ingest",
        "validate",
        "prioritise",
        "plan",
        "execute",
    }
    assert all(
        first["health"][d]["status"] == "ok" for d in ("kafka", "postgres", "redis", "chain")
    ), first["health"]

    ids = await drive_load(ui_settings, COUNT, rate=20)
    # While the load runs, a sample shows it moving.
    during = (await client.get("/pipeline")).json()
    await wait_until_finished(ui_settings.postgres, ids, timeout=120, pool=workers)

    # Then, once a sample has seen every event: the same figures as `sep status` and /metrics.
    deadline = time.monotonic() + 40
    while True:  # a sample that has seen every event, and lag read since the workers committed
        status = await collect_status(ui_settings, TOPOLOGY)
        stored_by_stage: dict[str, int] = {}
        for topic, n in status["events"].items():
            stage = STAGE_OF.get(topic, "other")
            stored_by_stage[stage] = stored_by_stage.get(stage, 0) + n
        view = (await client.get("/pipeline")).json()
        shown = {s["name"]: s["events"] for s in view["stages"] if s["events"]}
        lag_topics = {p["topic"] for p in view["lag"] or ()}
        states = {s: n for s, n in view["states"].items() if n}
        reported = sum(g["records"] for g in view["groups"])  # workers publish every 2 s
        metrics = prometheus((await client.get("/metrics")).text)
        # Both read the consumer lag through caches of their own (a few seconds apart): they
        # agree once the workers' commits have caught up with what they processed.
        same_lag = view["lag"] is not None and {
            (p["group"], p["topic"], p["partition"]): p["behind"] for p in view["lag"]
        } == {
            (dict(k)["group"], dict(k)["topic"], int(dict(k)["partition"])): int(v)
            for k, v in metrics.get("sep_consumer_lag", {}).items()
        }
        if (
            shown == stored_by_stage
            and states == status["states"]
            and reported
            and "sep.plans" in lag_topics
            and same_lag
        ) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert shown == stored_by_stage
    assert {
        dict(k)["stage"]: int(v) for k, v in metrics["sep_stage_events_total"].items()
    } == stored_by_stage
    assert states == status["states"] == {"completed": COUNT}
    assert view["intents"] == status["intents"]
    assert len(view["workers"]) == status["workers"] == 1
    assert view["problems"] == status["problems"] == []
    lag = {
        (dict(k)["group"], dict(k)["topic"], int(dict(k)["partition"])): int(v)
        for k, v in metrics["sep_consumer_lag"].items()
    }
    assert view["lag"] is not None
    assert {(p["group"], p["topic"], p["partition"]): p["behind"] for p in view["lag"]} == lag
    assert {p["topic"] for p in view["lag"]} >= {"sep.intents.submitted", "sep.plans"}

    # The last minute's figures cover the load: every stage moved, with latencies.
    for stage in view["stages"]:
        assert stage["eventsPerS"] > 0, stage
        assert stage["latency"]["count"] > 0, stage
        assert 0 < stage["latency"]["p50"] <= stage["latency"]["p99"], stage
    groups = {g["name"]: g for g in view["groups"]}
    assert sum(g["recordsPerS"] or 0 for g in groups.values()) > 0, view["groups"]
    assert any((g["batchSize"] or 0) >= 1 for g in groups.values())
    assert all(g["failuresInWindow"] == 0 and not g["failing"] for g in groups.values())
    assert during["at"] < view["at"]


async def test_pushed_over_the_websocket(server: ServerThread) -> None:
    url = server.url.replace("http", "ws") + "/stream/pipeline"
    async with websockets.connect(url) as socket:
        frames: list[dict[str, Any]] = []
        for _ in range(2):
            frames.append(orjson.loads(await asyncio.wait_for(socket.recv(), 10)))
    assert [f["type"] for f in frames] == ["pipeline", "pipeline"]
    assert frames[0]["at"] < frames[1]["at"]  # a new sample, not the same one twice
    assert frames[1]["stages"]
