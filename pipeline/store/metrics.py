"""Pipeline metrics the project stage records in Redis, for ``GET /metrics``.

Not a read model: counters here depend on *when* events were applied, so a replay neither
writes nor compares them (``metrics:*`` is outside the replayed key families).

    metrics:lag:{stage}       hash: bucket upper bound (s) | "+Inf" | "sum" | "count"
        how long after an event was stamped by its stage it reached the read model
    metrics:duration:{state}  hash, same shape: intent created -> its terminal event
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis

from pipeline.models.events import Event
from pipeline.store.projection import STAGE_OF, STATE_OF, TERMINAL_STATES, created_ms

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def bucket_of(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return str(bound)
    return "+Inf"


async def record(redis: aioredis.Redis, prefix: str, events: Sequence[Event],
                 now_ms: int) -> None:
    """Add the batch to the histograms (one pipeline round trip)."""
    if not events:
        return
    counts: dict[tuple[str, str], int] = {}
    sums: dict[str, float] = {}

    def observe(key: str, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        for field in (bucket_of(seconds), "count"):
            counts[(key, field)] = counts.get((key, field), 0) + 1
        sums[key] = sums.get(key, 0.0) + seconds

    for event in events:
        stamped = event.timestamp.timestamp() * 1000
        observe(f"{prefix}metrics:lag:{STAGE_OF.get(event.topic, 'other')}",
                (now_ms - stamped) / 1000)
        state = STATE_OF.get(event.topic)
        created = created_ms(event.correlation_id)
        if state in TERMINAL_STATES and created:
            observe(f"{prefix}metrics:duration:{state}", (stamped - created) / 1000)
    pipe = redis.pipeline(transaction=False)
    for (key, field), n in counts.items():
        pipe.hincrby(key, field, n)
    for key, total in sums.items():
        pipe.hincrbyfloat(key, "sum", total)
    await pipe.execute()
