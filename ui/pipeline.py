"""The pipeline view: how each stage is doing over the last minute, for the operator.

``GET /pipeline`` answers one snapshot; ``WS /stream/pipeline`` pushes one every
``SAMPLE_EVERY_S``.  Both come from one ``PipelineSampler`` per app, which starts with the app
(so the view has the last minute when it is first opened) and samples what the platform
already records:

    stats:stages (Redis)         events applied by the stage that emitted them  -> events/s
    metrics:lag:{stage} (Redis)  histogram, event stamped -> projected           -> p50, p99
    health:worker:* (Redis)      per worker and stage group: batches, records,
                                 queued, failures, dead letters                 -> records/s,
                                                                                   batch size
                                 per priority lane (ui/lanes.py): queued, behind,
                                 taken, waits                                   -> lanes
    consumer groups (Kafka)      committed vs end offset per partition          -> lag
    the dependencies             Kafka, PostgreSQL, Redis, the chain             -> health

Every counter is cumulative, so a figure "over the last minute" is the difference between the
newest sample and the oldest one still inside ``WINDOW_S``; a worker's counters start at zero
when it starts, so differences are taken per worker (a restarted worker counts from its start).
Percentiles come from the difference of two histograms, interpolated inside the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipeline.store import metrics, worker_health
from pipeline.store.metrics import BUCKETS
from ui import health, lanes
from ui.metrics import cached_lag
from ui.services import Services

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 2.0
WINDOW_S = 60.0
GROUP_FIELDS = ("batches", "records", "failures", "deadLetters")


@dataclass
class Sample:
    at: float  # monotonic seconds
    stage_events: dict[str, int]
    latency: dict[str, dict[str, float]]  # stage -> histogram hash (bucket bound -> count)
    groups: dict[tuple[str, str], dict[str, Any]]  # (worker, group) -> its counters


def percentile(hist: dict[str, float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram of bucket counts (not cumulative), in seconds,
    interpolated linearly inside its bucket; the last finite bound when it falls past it."""
    total = sum(hist.get(str(b), 0) for b in BUCKETS) + hist.get("+Inf", 0)
    if total <= 0:
        return None
    rank, seen, lower = q * total, 0.0, 0.0
    for bound in BUCKETS:
        n = hist.get(str(bound), 0)
        if n and seen + n >= rank:
            return lower + (bound - lower) * (rank - seen) / n
        seen += n
        lower = bound
    return BUCKETS[-1]


def _delta(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, float]:
    old = old or {}
    return {k: max(float(v) - float(old.get(k, 0)), 0.0) for k, v in new.items()}


class PipelineSampler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.samples: deque[Sample] = deque()
        self.latest: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        """Start sampling (once); return when the first snapshot is there."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="pipeline-sampler")
        await self._ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def next_snapshot(self, after: dict[str, Any] | None) -> dict[str, Any]:
        """The first snapshot that is not ``after`` (waits for the next sample)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.latest is not after)
            assert self.latest is not None
            return self.latest

    async def _run(self) -> None:
        while True:
            try:
                snapshot = await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: say so in the snapshot, keep sampling
                log.warning("pipeline sample failed: %r", exc)
                snapshot = {"at": time.time(), "error": repr(exc)}
            async with self._changed:
                self.latest = snapshot
                self._changed.notify_all()
            self._ready.set()
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def _read(self) -> tuple[Sample, dict[str, Any], dict[str, dict[str, Any]]]:
        services = self.services
        redis, prefix = services.redis, services.settings.redis_prefix
        stats = await services.views.stats()
        # The stages a lag histogram can be kept for are known: read those, never SCAN the
        # keyspace (hundreds of thousands of read-model keys, every SAMPLE_EVERY_S).
        stages = metrics.LAG_LABELS
        pipe = redis.pipeline(transaction=False)
        for stage in stages:
            pipe.hgetall(f"{prefix}metrics:lag:{stage}")
        latency = {
            stage: {str(k): float(v) for k, v in raw.items()}
            for stage, raw in zip(stages, await pipe.execute(), strict=True)
            if raw
        }
        workers = await worker_health.read_all(redis, prefix)
        groups = {
            (worker, name): state
            for worker, report in workers.items()
            for name, state in report.get("groups", {}).items()
        }
        sample = Sample(time.monotonic(), dict(stats["stages"]), latency, groups)
        return sample, stats, workers

    async def sample(self) -> dict[str, Any]:
        sample, stats, workers = await self._read()
        self.samples.append(sample)
        while len(self.samples) > 2 and sample.at - self.samples[1].at >= WINDOW_S:
            self.samples.popleft()
        checks, lag = await asyncio.gather(self._health(), cached_lag(self.services.settings.kafka))
        return self.snapshot(stats, workers, checks, lag)

    async def _health(self) -> dict[str, Any]:
        names = [*health.CHECKS, "chain"]
        results = await asyncio.gather(*(health.check(n, self.services) for n in names))
        return dict(zip(names, results, strict=True))

    def snapshot(
        self,
        stats: dict[str, Any],
        workers: dict[str, dict[str, Any]],
        checks: dict[str, Any],
        lag: list[tuple[str, str, int, int]] | None,
    ) -> dict[str, Any]:
        new, old = self.samples[-1], self.samples[0]
        span = new.at - old.at
        topology = self.services.topology
        stages = []
        submissions = topology.stages[0].inputs[0]
        for spec in topology.stages:
            if spec.name == "project" or spec.outputs[:1] == (submissions,):
                # The strategy runner writes submissions, not events: its throughput is
                # its group's (below), and its intents are ingest's events.
                continue
            events = new.stage_events.get(spec.name, 0)
            added = events - old.stage_events.get(spec.name, 0)
            hist = _delta(new.latency.get(spec.name, {}), old.latency.get(spec.name))
            stages.append(
                {
                    "name": spec.name,
                    "events": events,
                    "eventsPerS": added / span if span else None,
                    "latency": {
                        "p50": percentile(hist, 0.50),
                        "p99": percentile(hist, 0.99),
                        "count": int(hist.get("count", 0)),
                    },
                }
            )
        groups: dict[str, dict[str, Any]] = {}
        window: dict[str, dict[str, float]] = {}
        up_s = {w: float(r.get("upS") or 0) for w, r in workers.items()}
        for (worker, name), state in sorted(new.groups.items()):
            group = groups.setdefault(
                name,
                {"name": name, "workers": 0, "queued": 0, "failing": False}
                | dict.fromkeys(GROUP_FIELDS, 0),
            )
            group["workers"] += 1
            group["queued"] += int(state.get("queued", 0))
            group["failing"] |= state.get("failingForS") is not None
            for field in GROUP_FIELDS:
                group[field] += int(state.get(field, 0))
            moved = window.setdefault(name, dict.fromkeys(GROUP_FIELDS, 0.0))
            before = old.groups.get((worker, name))
            if before is None and up_s.get(worker, span + 1) > span:
                continue  # it was there before the window began, unsampled: no baseline
            # (a worker that started inside the window counts from zero, its start)
            counters = {f: state.get(f, 0) for f in GROUP_FIELDS}
            for field, d in _delta(counters, before).items():
                moved[field] += d
        for name, group in groups.items():
            moved = window[name]
            group["recordsPerS"] = moved["records"] / span if span else None
            group["batchSize"] = moved["records"] / moved["batches"] if moved["batches"] else None
            group["failuresInWindow"] = int(moved["failures"])
            group["deadLettersInWindow"] = int(moved["deadLetters"])
        read_by: dict[str, list[str]] = {}
        for spec in topology.stages:
            for topic in spec.inputs:
                read_by.setdefault(topic, []).append(spec.name)
        partitions = (
            None
            if lag is None
            else [
                {"group": g, "topic": t, "partition": p, "behind": n, "readBy": read_by.get(t, [])}
                for g, t, p, n in lag
            ]
        )
        return {
            "at": time.time(),
            "windowS": round(span, 1),
            "stages": stages,
            "groups": list(groups.values()),
            "lanes": lanes.window_rows(topology, new.groups, old.groups, span),
            "lag": partitions,
            "lagTotal": None if lag is None else sum(n for *_, n in lag),
            "health": checks,
            "eventStore": self.services.store.kind,
            "workers": [
                {"id": w, "pid": r.get("pid"), "upS": r.get("upS"), "fatal": r.get("fatal")}
                for w, r in sorted(workers.items())
            ],
            "problems": worker_health.problems(workers),
            "states": stats["states"],
            "intents": stats["intents"],
            "active": stats["active"],
        }


def sampler_of(request: Request | WebSocket) -> PipelineSampler:
    sampler: PipelineSampler = request.app.state.pipeline
    return sampler


async def get_pipeline(request: Request) -> Response:
    sampler = sampler_of(request)
    await sampler.start()
    assert sampler.latest is not None
    return Response(orjson.dumps(sampler.latest), media_type="application/json")


async def pipeline_stream(websocket: WebSocket) -> None:
    """Pushes ``{"type": "pipeline", ...snapshot}`` on connect and after every sample."""
    await websocket.accept()
    sampler = sampler_of(websocket)
    await sampler.start()

    async def drain() -> None:  # the client sends nothing we need; notice it going away
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    reader = asyncio.create_task(drain())
    shown: dict[str, Any] | None = None
    try:
        while not reader.done():
            waiter = asyncio.ensure_future(sampler.next_snapshot(shown))
            done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                break
            shown = waiter.result()
            await websocket.send_text(orjson.dumps({"type": "pipeline", **shown}).decode())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
