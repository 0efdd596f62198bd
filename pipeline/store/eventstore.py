"""The PostgreSQL event store (asyncpg): append idempotently, read back in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pipeline.models.events import Event
from pipeline.store.facts import EventFacts
from pipeline.store.migrate import migrate

_INSERT = """
INSERT INTO events (time, event_id, topic, correlation_id, causation_id, seq, version, payload)
SELECT t, i, tp, c, ca, s, v, p::jsonb
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
            $7::int[], $8::text[]) AS x(t, i, tp, c, ca, s, v, p)
ON CONFLICT (event_id) DO NOTHING
"""
_INSERT_OPERATOR = _INSERT.replace("INTO events", "INTO operator_events")
# On a TimescaleDB hypertable the key is (event_id, time) and a re-emitted event may carry
# another timestamp: the id alone decides (one project worker owns an intent's partition).
_INSERT_HYPERTABLE = _INSERT.replace(
    "ON CONFLICT (event_id) DO NOTHING",
    "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = x.i) ON CONFLICT DO NOTHING",
)
_IS_HYPERTABLE = """
SELECT EXISTS (
    SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'
) AND EXISTS (
    SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'
)
"""
_COLUMNS = "time, event_id, topic, correlation_id, causation_id, seq, version, payload"


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: the envelope's fields, snake_case."""

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

    def __init__(self, pool: asyncpg.Pool, *, hypertable: bool = False) -> None:
        self._pool = pool
        self.hypertable = hypertable
        """True on a TimescaleDB hypertable, False on a plain PostgreSQL table."""

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 4) -> EventStore:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        async with pool.acquire() as conn:
            await migrate(conn)
            has_timescale = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
            )
            hypertable = bool(has_timescale and await conn.fetchval(_IS_HYPERTABLE))
        return cls(pool, hypertable=hypertable)

    @property
    def kind(self) -> str:
        return "timescaledb hypertable" if self.hypertable else "postgresql (plain table)"

    async def close(self) -> None:
        await self._pool.close()

    async def append(self, events: Sequence[EventFacts]) -> int:
        """Store the events not already stored (by event id); return how many were new."""
        return await self._insert(_INSERT_HYPERTABLE if self.hypertable else _INSERT, events)

    async def append_operator(self, events: Sequence[EventFacts]) -> int:
        """Store control-plane and operator events in ``operator_events`` (not an intent's
        facts: ``sep replay`` never applies them to intents); how many were new."""
        return await self._insert(_INSERT_OPERATOR, events)

    async def _insert(self, query: str, events: Sequence[EventFacts]) -> int:
        if not events:
            return 0
        result = await self._pool.execute(
            query,
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

    async def operator_events(
        self, types: Sequence[str] | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """The latest operator events (of ``types``, if given), newest first."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM operator_events"
            " WHERE ($1::text[] IS NULL OR topic = ANY($1::text[]))"
            " ORDER BY time DESC, event_id DESC LIMIT $2",
            None if types is None else list(types),
            limit,
        )
        return [_stored(r) for r in rows]

    async def events_of(self, correlation_id: str) -> list[StoredEvent]:
        """The events of one intent, in seq order."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE correlation_id = $1 ORDER BY seq, event_id",
            correlation_id,
        )
        return [_stored(r) for r in rows]

    async def events_between(
        self, topic: str, start: datetime, end: datetime, *, limit: int | None = None
    ) -> list[StoredEvent]:
        """Events of one type with ``start <= time < end``, in time order."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE topic = $1 AND time >= $2 AND time < $3 "
            "ORDER BY time, event_id LIMIT $4",
            topic,
            start,
            end,
            limit,
        )
        return [_stored(r) for r in rows]

    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM events"))

    async def now(self) -> datetime:
        """The database's clock (``stored_at`` is stamped by it, not by ours)."""
        stamp: datetime = await self._pool.fetchval("SELECT clock_timestamp()")
        return stamp

    async def scan(
        self, batch: int = 5000, *, stored_since: datetime | None = None
    ) -> AsyncIterator[list[StoredEvent]]:
        """Every event (or those stored since a moment) in batches, by event id."""
        after = ""
        while True:
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE event_id > $1 "
                "AND ($2::timestamptz IS NULL OR stored_at >= $2) ORDER BY event_id LIMIT $3",
                after,
                stored_since,
                batch,
            )
            if not rows:
                return
            yield [_stored(r) for r in rows]
            after = rows[-1]["event_id"]

    async def payloads_of(self, topic: str) -> list[dict[str, Any]]:
        """The payload of every event of one type, in (time, event id) order."""
        rows = await self._pool.fetch(
            "SELECT payload FROM events WHERE topic = $1 ORDER BY time, event_id", topic
        )
        return [orjson.loads(p) if isinstance(p := r["payload"], str) else p for r in rows]

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
    # Every SELECT names _COLUMNS: stored_at is the store's bookkeeping, not part of the fact.
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


def to_event(stored: StoredEvent) -> Event:
    """Back to the envelope (for replay: the read model applies ``Event``s)."""
    return Event(
        event_id=stored.event_id,
        timestamp=stored.time,
        topic=stored.topic,
        correlation_id=stored.correlation_id,
        causation_id=stored.causation_id,
        seq=stored.seq,
        version=stored.version,
        payload=stored.payload,
    )
