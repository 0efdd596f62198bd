"""Where project puts the control plane's events (``sep.control``): not an intent's facts.

    PostgreSQL  operator_events   every change, idempotent on event_id (the audit trail)
    Redis       control           hash: control key -> the latest change's event (JSON);
                                  what ``GET /risk`` and the UI read
                changes           one entry per change (intentId empty, data = the payload
                                  plus its key), so the UI hears of it live

A change older than what the hash holds for its key (a redelivery, a replay) updates nothing
and adds no stream entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from pipeline.codec import encode_event
from pipeline.models.events import Event
from pipeline.store.readmodel import CHANGE_STREAM_MAXLEN

_APPLY = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cjson.decode(cur)['seq']) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'intentId', '', 'seq', ARGV[2],
           'topic', ARGV[4], 'state', '', 'eventId', ARGV[5], 'ms', ARGV[6], 'data', ARGV[8])
return 1
"""


async def apply_control(client: aioredis.Redis, prefix: str, events: Sequence[Event]) -> int:
    """Apply control events to the ``control`` hash and the change stream, in one round trip;
    how many were new.  (A worker starting on a long history publishes a change per
    strategy at once: hundreds in one batch.)"""
    if not events:
        return 0
    script = client.register_script(_APPLY)
    pipe = client.pipeline(transaction=False)
    for event in sorted(events, key=lambda e: (e.correlation_id, e.seq)):
        data = {"key": event.correlation_id, **event.payload}
        await script(
            keys=[f"{prefix}control", f"{prefix}changes"],
            args=[
                event.correlation_id,
                event.seq,
                encode_event(event).decode(),
                event.topic,
                event.event_id,
                int(event.timestamp.timestamp() * 1000),
                CHANGE_STREAM_MAXLEN,
                orjson.dumps(data).decode(),
            ],
            client=pipe,
        )
    return sum(int(applied) for applied in await pipe.execute())


async def latest_control(client: aioredis.Redis, prefix: str) -> dict[str, dict[str, Any]]:
    """Control key -> the latest change's event (wire envelope), as project last stored it."""
    raw = await client.hgetall(f"{prefix}control")
    return {str(k): orjson.loads(v) for k, v in raw.items()}
