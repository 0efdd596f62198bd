"""What ``sep status`` and the status page show: intents per state, stored events, fills."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from pipeline.config import Settings
from pipeline.store import worker_health
from pipeline.store.eventstore import EventStore
from pipeline.store.readmodel import TERMINAL_STATES, ReadModel
from pipeline.topology.models import MODE_NOTES, Topology

STATE_ORDER = (
    "submitted",
    "accepted",
    "prioritised",
    "planned",
    "executing",
    "completed",
    "rejected",
    "risk_rejected",
    "plan_rejected",
    "failed",
    "expired",
    "cancelled",
)


async def collect_status(settings: Settings, topology: Topology) -> dict[str, Any]:
    read_model = ReadModel.connect(settings.redis, settings.redis_prefix)
    client = aioredis.from_url(settings.redis)
    try:
        states = await read_model.state_counts()
        workers = await worker_health.read_all(client, settings.redis_prefix)
    finally:
        await read_model.close()
        await client.aclose()
    store = await asyncio.wait_for(EventStore.connect(settings.postgres), 10)
    try:
        events = await store.count_by_topic()
        kind = store.kind
    finally:
        await store.close()
    total = sum(states.values())
    done = sum(n for s, n in states.items() if s in TERMINAL_STATES)
    return {
        "intents": total,
        "active": total - done,
        "states": {s: states.get(s, 0) for s in STATE_ORDER if states.get(s)},
        "events": dict(sorted(events.items())),
        "success_rate": (states.get("completed", 0) / done) if done else None,
        "event_store": kind,
        "mode": topology.app.mode,
        "workers": len(workers),
        "loop_lag_p99_ms": {
            w: r.get("loopLagMs", {}).get("p99") for w, r in sorted(workers.items())
        },
        "problems": worker_health.problems(workers),
        "lanes": {
            (topology.lanes.lane_of_topic(topic) if topology.lanes else None) or topic: lane
            for topic, lane in worker_health.lanes(workers).items()
        },
    }


def render_status(status: dict[str, Any]) -> str:
    lines = []
    if "mode" in status:
        lines.append(f"mode: {status['mode']}{MODE_NOTES.get(status['mode'], '')}")
    workers = f"workers: {status.get('workers', 0)} reporting"
    lags = [f"{lag:.0f}" for lag in status.get("loop_lag_p99_ms", {}).values() if lag is not None]
    if lags:
        # How late each worker's event loop runs what is due: every record waits that long.
        workers += f" (event-loop lag p99: {', '.join(lags)} ms)"
    lines.append(workers)
    lines += [f"  PROBLEM {line}" for line in status.get("problems", [])]
    lines.append(f"intents: {status['intents']} ({status['active']} active)")
    for state, n in status["states"].items():
        lines.append(f"  {state:<14} {n:>8}")
    if status["success_rate"] is not None:
        lines.append(f"success rate of finished intents: {status['success_rate']:.1%}")
    lines.append(f"events stored ({status['event_store']}): {sum(status['events'].values())}")
    for topic, n in status["events"].items():
        lines.append(f"  {topic:<20} {n:>8}")
    if status.get("lanes"):
        # Waits: ingest's write to the chain's pass; mean since the workers started.
        lines.append("lanes:            queued   behind    taken  mean wait  max wait")
        for name, lane in status["lanes"].items():
            mean = lane["waitMsSum"] / lane["records"] if lane["records"] else None
            lines.append(
                f"  {name:<12} {lane['queued']:>8} {lane['behind']:>8} {lane['records']:>8} "
                + (f"{mean:>8.1f}ms" if mean is not None else f"{'-':>10}")
                + f" {lane['waitMsMax']:>7.0f}ms"
                + ("  (paused)" if lane["paused"] else "")
            )
    return "\n".join(lines)
