"""``GET /metrics``: Prometheus text — per-stage event counts, latencies, consumer lag.

Counts and histograms come from what the project stage recorded in Redis (so every UI replica
reports the same figures); consumer lag is read from Kafka (committed offset vs end offset of
each of the pipeline's consumer groups), cached briefly since a scrape must stay cheap.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from starlette.requests import Request
from starlette.responses import Response

from pipeline.risk.status import risk_status
from pipeline.store import metrics as store_metrics
from pipeline.store import risk_usage, worker_health
from pipeline.store.control_log import latest_control
from pipeline.store.metrics import BUCKETS
from pipeline.store.projection import STAGE_OF
from ui import lanes
from ui.kafka_clients import running
from ui.kill import control_gauges
from ui.services import Services, services_of

LAG_CACHE_S = 5.0
_lag_cache: dict[str, tuple[float, list[tuple[str, str, int, int]] | None]] = {}


async def consumer_lag(kafka: str) -> list[tuple[str, str, int, int]]:
    """(group, topic, partition, records behind) for every group's committed partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=3000)
    async with running(admin.start, admin.close):
        # Built only now: a consumer never stopped warns when collected (Unclosed AIOKafkaConsumer).
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, request_timeout_ms=3000)
        async with running(consumer.start, consumer.stop):
            return await _lag(admin, consumer)


async def _lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer
) -> list[tuple[str, str, int, int]]:
    out = []
    for group, _protocol in await admin.list_consumer_groups():
        committed = await admin.list_consumer_group_offsets(group)
        if not committed:
            continue
        ends = await consumer.end_offsets(list(committed))
        for tp, meta in sorted(committed.items()):
            if meta.offset >= 0:
                out.append((str(group), tp.topic, tp.partition, max(ends[tp] - meta.offset, 0)))
    return out


async def cached_lag(kafka: str) -> list[tuple[str, str, int, int]] | None:
    cached = _lag_cache.get(kafka)
    if cached and time.monotonic() - cached[0] < LAG_CACHE_S:
        return cached[1]
    try:
        lag: list[tuple[str, str, int, int]] | None = await asyncio.wait_for(
            consumer_lag(kafka), 5.0
        )
    except Exception:
        lag = None
    _lag_cache[kafka] = (time.monotonic(), lag)
    return lag


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram(lines: list[str], name: str, label: str, value: str, raw: dict[Any, Any]) -> None:
    running = 0
    for bound in BUCKETS:
        running += int(raw.get(str(bound), 0))
        lines.append(f'{name}_bucket{{{label}="{_label(value)}",le="{bound}"}} {running}')
    running += int(raw.get("+Inf", 0))
    lines.append(f'{name}_bucket{{{label}="{_label(value)}",le="+Inf"}} {running}')
    lines.append(f'{name}_sum{{{label}="{_label(value)}"}} {float(raw.get("sum", 0))}')
    lines.append(f'{name}_count{{{label}="{_label(value)}"}} {int(raw.get("count", 0))}')


async def render(services: Services) -> str:
    stats = await services.views.stats()
    prefix = services.settings.redis_prefix
    lines = [
        "# HELP sep_events_total Events applied to the read models, by stage and type.",
        "# TYPE sep_events_total counter",
    ]
    for topic, n in sorted(stats["events"].items()):
        stage = STAGE_OF.get(topic, "other")
        lines.append(f'sep_events_total{{stage="{stage}",type="{_label(topic)}"}} {n}')
    lines += [
        "# HELP sep_stage_events_total Events applied, by the stage that emitted them.",
        "# TYPE sep_stage_events_total counter",
    ]
    for stage, n in sorted(stats["stages"].items()):
        lines.append(f'sep_stage_events_total{{stage="{_label(stage)}"}} {n}')
    lines += ["# HELP sep_intents Intents by current state.", "# TYPE sep_intents gauge"]
    for state, n in sorted(stats["states"].items()):
        lines.append(f'sep_intents{{state="{_label(state)}"}} {n}')
    for name, family, label, help_text in (
        (
            "sep_projection_lag_seconds",
            "lag",
            "stage",
            "From an event's timestamp (its stage) to its projection into the read models.",
        ),
        (
            "sep_intent_duration_seconds",
            "duration",
            "state",
            "From an intent's creation to its terminal event, by terminal state.",
        ),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        # The label values are known (never SCAN the keyspace on a scrape).
        values = store_metrics.LAG_LABELS if family == "lag" else store_metrics.DURATION_LABELS
        pipe = services.redis.pipeline(transaction=False)
        for value in values:
            pipe.hgetall(f"{prefix}metrics:{family}:{value}")
        for value, raw in zip(values, await pipe.execute(), strict=True):
            if raw:
                _histogram(lines, name, label, value, raw)
    lines += await risk_lines(services)
    lag = await cached_lag(services.settings.kafka)
    lines += [
        "# HELP sep_consumer_lag Records behind the end offset, per consumer group and partition.",
        "# TYPE sep_consumer_lag gauge",
    ]
    for group, topic, partition, behind in lag or []:
        lines.append(
            f'sep_consumer_lag{{group="{_label(group)}",topic="{_label(topic)}",'
            f'partition="{partition}"}} {behind}'
        )
    lines += [
        "# HELP sep_consumer_lag_up 1 if consumer lag could be read from Kafka.",
        "# TYPE sep_consumer_lag_up gauge",
        f"sep_consumer_lag_up {int(lag is not None)}",
        "# HELP sep_stream_clients WebSocket subscriptions open on this instance.",
        "# TYPE sep_stream_clients gauge",
        f"sep_stream_clients {services.broadcaster.subscribers}",
    ]
    lines += await control_gauges(services)  # the kill switches and venue breakers
    workers = await worker_health.read_all(services.redis, prefix)
    lines += lanes.metric_lines(services.topology, workers)
    return "\n".join(lines) + "\n"


RISK_STATE_VALUE = {"NORMAL": 0, "REDUCING": 1, "HALTED": 2}
USAGE_OF_RULE = {
    "max_open_intents": "openIntents",
    "max_daily_notional": "tradedToday",
    "max_position": "largestPosition",
    "max_concentration": "concentration",
}


async def risk_lines(services: Services) -> list[str]:
    """Risk gauges: breaker state and marks per scope, limits against usage per strategy
    (from the control hash and the risk engine's usage report).  The kill switches are
    ``sep_kill_switch_engaged{scope}`` (``ui.kill.control_gauges``): one family per fact."""
    prefix = services.settings.redis_prefix
    control = await latest_control(services.redis, prefix)
    usage = await risk_usage.read(services.redis, prefix)
    status = risk_status(services.topology, control, usage)
    scopes = [status["global"], *status["strategies"]]
    lines = [
        "# HELP sep_risk_state Breaker state per scope: 0 NORMAL, 1 REDUCING, 2 HALTED.",
        "# TYPE sep_risk_state gauge",
    ]
    lines += [
        f'sep_risk_state{{scope="{_label(s["scope"])}"}} {RISK_STATE_VALUE.get(s["state"], 0)}'
        for s in scopes
    ]
    for name, field, help_text in (
        ("sep_risk_pnl", "pnl", "P&L since the breaker's epoch began, in the quote asset."),
        ("sep_risk_equity", "equity", "Equity marked to market, in the quote asset."),
        ("sep_risk_drawdown", "drawdown", "Fall from the epoch's peak equity, a share of it."),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for s in scopes:
            value = (s["marks"] or {}).get(field)
            if value is not None:
                lines.append(f'{name}{{scope="{_label(s["scope"])}"}} {value}')
    lines += [
        "# HELP sep_risk_limit A strategy's limit in force, by rule.",
        "# TYPE sep_risk_limit gauge",
    ]
    used_lines = [
        "# HELP sep_risk_usage What a strategy uses of a limit, by rule (open intents, "
        "notional traded today, largest position's value, its share of equity).",
        "# TYPE sep_risk_usage gauge",
    ]
    for s in status["strategies"]:
        who = _label(s["strategyId"])
        for rule, value in sorted(s["limits"].items()):
            lines.append(f'sep_risk_limit{{strategy="{who}",rule="{rule}"}} {value}')
        for rule, field in USAGE_OF_RULE.items():
            used = (s["usage"] or {}).get(field)
            if used is not None:
                used_lines.append(f'sep_risk_usage{{strategy="{who}",rule="{rule}"}} {used}')
    lines += used_lines
    lines += [
        "# HELP sep_risk_usage_up 1 if a validating worker's risk report is current.",
        "# TYPE sep_risk_usage_up gauge",
        f"sep_risk_usage_up {int(usage is not None)}",
    ]
    return lines


async def metrics(request: Request) -> Response:
    return Response(
        await render(services_of(request.app)),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
