"""Each worker's health, as the worker sees it, in Redis: what ``/health`` and ``sep status``
show besides the dependencies.

A worker writes ``{prefix}health:worker:{id}`` every ``PUBLISH_EVERY_S`` with a TTL of
``TTL_S``: a worker that died simply disappears.  The record says, per stage group, whether
it keeps failing (a batch has failed for ``FAILING_AFTER_S`` without a success since), and
per partition whether records wait while its committed offset does not move
(``STALLED_AFTER_S``).  Either makes the platform "degraded": `/health` answers 503.

The worker ids are also kept in the set ``{prefix}health:workers``, so reading them all is
two commands, not a ``SCAN`` of the whole keyspace (hundreds of thousands of read-model keys
after a day: the status line and the pipeline page read this every few seconds).  An id
whose record has expired is dropped from the set by the reader.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

PUBLISH_EVERY_S = 2.0
TTL_S = 10.0
FAILING_AFTER_S = 5.0
LAGGING_MS = 1000.0
"""An event-loop lag p99 (``pipeline.runtime.loop_lag``) above this is a problem."""
STALLED_AFTER_S = 30.0


def key_of(prefix: str, worker_id: str) -> str:
    return f"{prefix}health:worker:{worker_id}"


def registry_of(prefix: str) -> str:
    return f"{prefix}health:workers"


async def publish(
    client: aioredis.Redis, prefix: str, worker_id: str, report: dict[str, Any]
) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.set(key_of(prefix, worker_id), orjson.dumps(report), ex=int(TTL_S))
    pipe.sadd(registry_of(prefix), worker_id)
    await pipe.execute()


async def read_all(client: aioredis.Redis, prefix: str) -> dict[str, dict[str, Any]]:
    """Every live worker's last report, by worker id."""
    members = await client.smembers(registry_of(prefix))
    ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
    if not ids:
        return {}
    values = await client.mget([key_of(prefix, worker_id) for worker_id in ids])
    gone = [worker_id for worker_id, value in zip(ids, values, strict=True) if not value]
    if gone:  # expired: the worker stopped reporting
        await client.srem(registry_of(prefix), *gone)
    return {
        worker_id: orjson.loads(value)
        for worker_id, value in zip(ids, values, strict=True)
        if value
    }


def problems(reports: dict[str, dict[str, Any]]) -> list[str]:
    """What a person should look at, one line each (empty: every worker is healthy)."""
    lines = []
    for worker, report in sorted(reports.items()):
        for group, state in sorted(report.get("groups", {}).items()):
            if state.get("failingForS") is not None:
                lines.append(
                    f"worker {worker}: stage {group} has been failing for "
                    f"{state['failingForS']:.0f}s ({state.get('failures', 0)} failed "
                    "batches)"
                )
        for tp, state in sorted(report.get("stalled", {}).items()):
            lines.append(
                f"worker {worker}: partition {tp} has {state['waiting']} records "
                f"waiting and its committed offset {state['committed']} has not moved "
                f"for {state['forS']:.0f}s"
            )
        lag = report.get("loopLagMs", {}).get("p99", 0.0)
        if lag > LAGGING_MS:
            lines.append(
                f"worker {worker}: its event loop runs what is due {lag / 1000:.1f}s late "
                "(p99): every stage of the worker waits that long (a blocking call?)"
            )
    return lines


def lanes(reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every priority lane over all workers (``topology.yaml`` ``lanes:``), by lane topic:
    queued in the workers, behind in Kafka, records taken, the sum of their waits (ms, from
    ingest's write to the pass that took them), the longest wait since the last reports,
    and whether any worker has paused fetching it."""
    out: dict[str, dict[str, Any]] = {}
    for report in reports.values():
        for state in report.get("groups", {}).values():
            for topic, lane in state.get("lanes", {}).items():
                total = out.setdefault(
                    topic,
                    {
                        "queued": 0,
                        "behind": 0,
                        "records": 0,
                        "waitMsSum": 0.0,
                        "waitMsMax": 0.0,
                        "paused": False,
                    },
                )
                for field in ("queued", "behind", "records", "waitMsSum"):
                    total[field] += lane.get(field, 0)
                total["waitMsMax"] = max(total["waitMsMax"], lane.get("waitMsMax", 0.0))
                total["paused"] |= bool(lane.get("paused"))
    return out
