"""The PostgreSQL event store (asyncpg): append idempotently, read back in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pipeline.models.events import Event
from pipeline.store.migrate import migrate

_INSERT = """
INSERT INTO events (time, event_id, topic, correlation_id, causation_id, seq, version, payload)
SELECT t, i, tp, c, ca, s, v, p::jsonb
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
            $7::int[], $8::text[]) AS x(t, i, tp, c, ca, s, v, p)
ON CONFLICT (event_id) DO NOTHING
"""


@dataclass(frozen=True)
class StoredEvent:
    time: datetime
    event_id: str
    topic: str
    correlation_id: str
    causation_id: str | None
    seq: int
    version: int
    payload: dict[str, Any]


class EventStore:
    """Single writer: the project stage.  Readers: the CLI, tests, replay."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 4) -> EventStore:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        async with pool.acquire() as conn:
            await migrate(conn)
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def append(self, events: Sequence[Event]) -> int:
        """Store the events not already stored (by event id); return how many were new."""
        if not events:
            return 0
        result = await self._pool.execute(
            _INSERT,
            [e.timestamp for e in events],
            [e.event_id for e in events],
            [e.topic for e in events],
            [e.correlation_id for e in events],
            [e.causation_id for e in events],
            [e.seq for e in events],
            [e.version for e in events],
            [orjson.dumps(e.payload).decode() for e in events],
        )
        return int(result.rsplit(" ", 1)[1])

    async def events_of(self, correlation_id: str) -> list[StoredEvent]:
        rows = await self._pool.fetch(
            "SELECT * FROM events WHERE correlation_id = $1 ORDER BY seq, event_id", correlation_id
        )
        return [_stored(r) for r in rows]

    async def events_between(self, topic: str, start: datetime, end: datetime) -> list[StoredEvent]:
        rows = await self._pool.fetch(
            "SELECT * FROM events WHERE topic = $1 AND time >= $2 AND time < $3 ORDER BY time",
            topic,
            start,
            end,
        )
        return [_stored(r) for r in rows]

    async def count_by_topic(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT topic, count(*) AS n FROM events GROUP BY topic")
        return {r["topic"]: r["n"] for r in rows}

    async def latest_states(self) -> dict[str, tuple[str, int]]:
        """Each intent's last event (topic, seq): what the read model's state must reflect."""
        rows = await self._pool.fetch(
            "SELECT DISTINCT ON (correlation_id) correlation_id, topic, seq FROM events "
            "ORDER BY correlation_id, seq DESC"
        )
        return {r["correlation_id"]: (r["topic"], r["seq"]) for r in rows}


def _stored(row: asyncpg.Record) -> StoredEvent:
    payload = row["payload"]
    return StoredEvent(
        time=row["time"],
        event_id=row["event_id"],
        topic=row["topic"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        seq=row["seq"],
        version=row["version"],
        payload=orjson.loads(payload) if isinstance(payload, str) else payload,
    )
