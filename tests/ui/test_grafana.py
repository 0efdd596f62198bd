"""deployment/grafana/sep-dashboard.json: it parses, and every metric it queries is one
``GET /metrics`` serves, with samples, once the pipeline has run (real Redis and Kafka)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from pipeline.config import Settings
from pipeline.stages.base import now_ms
from pipeline.store.metrics import add_to
from tests.store.lifecycle import lifecycle, sim_venue
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread

DASHBOARD = Path(__file__).resolve().parents[2] / "deployment" / "grafana" / "sep-dashboard.json"
METRIC = re.compile(r"\b(sep_[a-z_]+)\b")
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{.*\})? \S+$", re.M)


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    exprs = []
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"].strip("${}") in variables
            exprs.append(target["expr"])
    return exprs


def test_the_dashboard_parses_and_queries_only_our_metrics() -> None:
    names = {n for e in queries() for n in METRIC.findall(e)}
    assert names >= {
        "sep_intents",
        "sep_stage_events_total",
        "sep_consumer_lag",
        "sep_projection_lag_seconds_bucket",
        "sep_intent_duration_seconds_bucket",
    }


async def test_every_metric_it_queries_is_served(
    server: ServerThread, ui_settings: Settings, tmp_path: Path
) -> None:
    # What the pipeline leaves behind: events projected with their histograms, and a consumer
    # group with a committed offset (whose lag /metrics reads from Kafka).
    async with sim_venue(tmp_path) as sim:
        events = await lifecycle(sim, 500, strategy="grafana")
    await store_and_project(ui_settings, events)
    client = aioredis.from_url(ui_settings.redis)
    try:
        pipe = client.pipeline(transaction=False)
        add_to(pipe, ui_settings.redis_prefix, events, now_ms())
        await pipe.execute()
    finally:
        await client.aclose()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ui_settings.kafka,
        enable_auto_commit=False,
        group_id=f"grafana-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        tp = TopicPartition("sep.intents.submitted", 0)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(0, "")})
    finally:
        await consumer.stop()

    wanted = {n for e in queries() for n in METRIC.findall(e)}
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        for _ in range(40):  # consumer lag is cached for a few seconds per broker
            served = set(SAMPLE.findall((await http.get("/metrics")).text))
            if wanted <= served:
                break
            await asyncio.sleep(0.5)
    assert wanted - served == set()
