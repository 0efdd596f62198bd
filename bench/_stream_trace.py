"""``sep bench stream --segments``: where an event's way to the WebSocket client goes.

Bench-only instrumentation, installed by wrapping a few methods in the processes the bench
starts (the production code carries no tracing):

* the workers run ``python -m bench._stream_trace worker ...``: the consumer stamps when each
  record of project's inputs was fetched, and project records, per event, the event's own
  timestamp, its Kafka record's timestamp (the producer's append), the fetch, the start of
  project's pass, the end of the PostgreSQL append and the end of the Redis apply;
* the UI runs ``uvicorn --factory bench._stream_trace:create_app``: the change broadcaster
  stamps when each change was read from the stream, the socket when it was sent.

Both push JSON rows onto Redis lists (``trace:project``, ``trace:ui``) off the hot path, and
the bench joins them with what its client received, by event id (project) and change id (UI).
The change id's milliseconds are Redis' clock at the ``XADD``: the same host's clock.

    event ms ─► kafka ts ─► fetched ─► pass start ─► PG done ─► Redis done (XADD ms inside)
        ─► UI read ─► WS sent ─► client received
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

PROJECT_KEY = "trace:project"
UI_KEY = "trace:ui"
POINTS = ("event", "kafka", "asked", "fetched", "pass", "pg", "redis")
"""Project's stamps per event, in the order of its rows."""
SEGMENTS = (
    ("event -> kafka append", "event", "kafka"),
    ("kafka append -> project fetched", "kafka", "fetched"),
    ("  of which the fetch loop not asking", "kafka", "asking"),
    ("  of which the consumer's fetch", "asking", "fetched"),
    ("fetched -> project pass start", "fetched", "pass"),
    ("pass start -> PostgreSQL done", "pass", "pg"),
    ("pass start -> Redis apply done", "pass", "redis"),
    ("pass start -> XADD (Redis clock)", "pass", "xadd"),
    ("XADD -> UI read", "xadd", "read"),
    ("UI read -> WS sent", "read", "sent"),
    ("WS sent -> client received", "sent", "client"),
    ("event -> client (total)", "event", "client"),
)


def _now_ms() -> float:
    return time.time() * 1000


class _Pusher:
    """Rows pushed to a Redis list by a background task (never awaited on the hot path)."""

    def __init__(self, url: str, key: str) -> None:
        self._redis = aioredis.from_url(url)
        self._key = key
        self._rows: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, row: Any) -> None:
        self._rows.append(orjson.dumps(row))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            rows, self._rows = self._rows, []
            if rows:
                with contextlib.suppress(Exception):
                    await self._redis.rpush(self._key, *rows)


def install_worker() -> None:
    from pipeline.config import Settings
    from pipeline.control.keys import TOPIC as CONTROL_TOPIC
    from pipeline.runtime.delivery import patches
    from pipeline.stages import project
    from pipeline.store.eventstore import EventStore
    from pipeline.store.readmodel import ReadModel

    settings = Settings()
    prefix = settings.redis_prefix
    fetched: dict[tuple[str, int, int], tuple[float, float]] = {}
    pusher: list[_Pusher] = []
    phase: dict[str, float] = {}

    original_getmany = patches.AdaptiveWaitConsumer.getmany

    async def getmany(self: Any, *partitions: Any, **kwargs: Any) -> Any:
        called = _now_ms()
        data = await original_getmany(self, *partitions, **kwargs)
        now = _now_ms()
        for tp, messages in data.items():
            if tp.topic.startswith("sep.") and tp.topic != "sep.intents.submitted":
                for m in messages:
                    fetched[(tp.topic, tp.partition, m.offset)] = (called, now)
        if len(fetched) > 200_000:  # topics project does not read in this worker
            fetched.clear()
        return data

    stored: list[Any] = []

    def timed(method: Callable[..., Any], name: str) -> Callable[..., Any]:
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = await method(self, *args, **kwargs)
            phase[name] = _now_ms()
            if name == "pg":  # the batch's events, decoded once by project itself
                stored[:] = args[0]
            return result

        return wrapper

    original_process = project.ProjectStage.process

    async def process(self: Any, records: Sequence[Any], emit: Any) -> None:
        started = _now_ms()
        phase.clear()
        stored.clear()
        await original_process(self, records, emit)
        if not pusher:
            pusher.append(_Pusher(settings.redis, f"{prefix}{PROJECT_KEY}"))
        rows = []
        facts = [r for r in records if r.topic != CONTROL_TOPIC]
        for r, event in zip(facts, stored, strict=False):
            rows.append(
                [
                    event.event_id,
                    event.timestamp.timestamp() * 1000,
                    r.timestamp_ms,
                    *fetched.pop((r.topic, r.partition, r.offset), (None, None)),
                    started,
                    phase.get("pg"),
                    phase.get("redis"),
                ]
            )
        pusher[0].add(rows)

    # Wrapped in place: this module is a bench's instrument, never imported by the pipeline.
    patches.AdaptiveWaitConsumer.getmany = getmany
    EventStore.append = timed(EventStore.append, "pg")  # type: ignore[method-assign]
    ReadModel.apply = timed(ReadModel.apply, "redis")  # type: ignore[method-assign]
    project.ProjectStage.process = process  # type: ignore[method-assign]


def create_app() -> Any:
    from pipeline.config import Settings
    from pipeline.store.changes import ChangeStream
    from ui import app, stream

    settings = Settings()
    read_at: dict[str, float] = {}
    pusher: list[_Pusher] = []
    original_tail = ChangeStream.tail
    original_send = stream.Connection.send

    async def tail(self: Any, last_seen: str, block_ms: int, count: int = 1000) -> Any:
        changes = await original_tail(self, last_seen, block_ms, count)
        now = _now_ms()
        for change in changes:
            read_at[change["id"]] = now
        return changes

    async def send(self: Any, frame: dict[str, Any]) -> None:
        await original_send(self, frame)
        if frame.get("type") == "change" and (read := read_at.pop(frame["id"], None)):
            if not pusher:
                pusher.append(_Pusher(settings.redis, f"{settings.redis_prefix}{UI_KEY}"))
            pusher[0].add([frame["id"], read, _now_ms()])

    ChangeStream.tail = tail  # type: ignore[method-assign]
    stream.Connection.send = send  # type: ignore[method-assign]
    return app.create_app()


async def collect(url: str, prefix: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(event id -> project's stamps, change id -> [UI read, WS sent])."""
    client = aioredis.from_url(url)
    try:
        project_rows = await client.lrange(f"{prefix}{PROJECT_KEY}", 0, -1)
        ui_rows = await client.lrange(f"{prefix}{UI_KEY}", 0, -1)
    finally:
        await client.aclose()
    by_event: dict[str, list[float]] = {}
    for raw in project_rows:
        for event_id, *stamps in orjson.loads(raw):
            by_event[event_id] = stamps
    by_change: dict[str, list[float]] = {}
    for raw in ui_rows:  # one row per change sent
        change_id, read, sent = orjson.loads(raw)
        by_change[change_id] = [read, sent]
    return by_event, by_change


def segments(
    frames: Sequence[tuple[str, str, str, int, float]],
    intents: set[str],
    by_event: dict[str, list[float]],
    by_change: dict[str, list[float]],
    pct: Callable[[Sequence[float], float], float],
) -> dict[str, dict[str, float]]:
    """Per segment: p50, p99 and mean ms over the change frames of ``intents``."""
    values: dict[str, list[float]] = {name: [] for name, _, _ in SEGMENTS}
    for intent_id, event_id, change_id, event_ms, received in frames:
        if intent_id not in intents:
            continue
        points: dict[str, float | None] = dict.fromkeys(POINTS)
        if (stamps := by_event.get(event_id)) is not None:
            points.update(zip(POINTS, stamps, strict=True))
        points["event"] = float(event_ms)  # what the bench's latency counts from
        if points["asked"] is not None and points["kafka"] is not None:
            # From the later of the append and the getmany call that returned the record.
            points["asking"] = max(points["asked"], points["kafka"])
        points["xadd"] = float(change_id.split("-")[0])
        read, sent = by_change.get(change_id, (None, None))
        points.update(read=read, sent=sent, client=received)
        for name, start, end in SEGMENTS:
            a, b = points.get(start), points.get(end)
            if a is not None and b is not None:
                values[name].append(b - a)
    return {
        name: {
            "p50": round(pct(v, 0.5), 1),
            "p99": round(pct(v, 0.99), 1),
            "mean": round(sum(v) / len(v), 1) if v else float("nan"),
            "n": len(v),
        }
        for name, v in values.items()
    }


def main(argv: list[str]) -> int:
    install_worker()
    from pipeline.cli.main import main as sep_main

    return sep_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
