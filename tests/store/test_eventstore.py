"""The event store on a real PostgreSQL: query helpers, scan for replay, kind reported."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pipeline.store.eventstore import EventStore, to_event
from plugins.sim_venue import SimVenue
from tests.store.lifecycle import lifecycle


async def test_query_helpers_and_scan(postgres_dsn: str, sim: SimVenue) -> None:
    store = await EventStore.connect(postgres_dsn)
    try:
        # No TimescaleDB package is reachable here: the plain table, and it says so.
        assert store.kind == "postgresql (plain table)"
        events = await lifecycle(
            sim, 60, at_ms=1_600_000_000_000 + 7, strategy=f"es-{uuid.uuid4().hex[:8]}"
        )
        started = await store.now()
        assert await store.append(events[::-1]) == 9
        assert await store.append(events) == 0
        mine = await store.events_of(events[0].correlation_id)
        assert [e.seq for e in mine] == list(range(1, 10))
        assert [to_event(e) for e in mine] == events
        t = events[0].timestamp
        between = await store.events_between("exec.completed", t, t + timedelta(seconds=1))
        assert events[-1].event_id in {e.event_id for e in between}
        assert await store.events_between("exec.completed", t - timedelta(days=1), t) == []
        scanned = [
            e.event_id async for batch in store.scan(batch=4, stored_since=started) for e in batch
        ]
        assert sorted({e.event_id for e in events}) == [
            i for i in scanned if i in {e.event_id for e in events}
        ]
        assert scanned == sorted(scanned)
    finally:
        await store.close()
