"""The change stream (``changes``, a Redis stream): read it from a last-seen id, or tail it.

Every applied event is one change, the frame the UI gets (``WS /stream``):

    {"type": "change", "id": "1717000000000-3", "intentId", "seq", "topic", "state" (after
     the change), "eventId", "ms", "data" (the intent fields the event wrote)}

The read model stores an intent's changes of one apply call as one entry (one XADD rather than
one per event: the biggest write of the apply script), under ids it reserves so that each
change still has its own (``readmodel.py``): an entry of k changes is stored under ms-s and
its changes are ms-(s-k+1) .. ms-s, oldest first:

    1717000000000-3  intentId, changes: [[seq, topic, eventId, ms, data], ...],
                     states: [state, ...]  (after each change)

The changes are the JSON the project stage sent, stored as it is (the state after each, which
only the apply script knows, beside them: making strings in Redis' Lua costs per byte).
Entries written before that hold [seq, topic, eventId, ms, data, state] per change and no
states; older ones hold one change each (intentId, seq, topic, state, eventId, ms, data), and
so do the control plane's (``control_log.py``); every kind is read.  Change ids only grow, so
"after this id" is a complete resume point, even inside an entry (the changes of it up to the
id are skipped) — unless the stream was trimmed past it (``MAXLEN``), which ``first_id`` lets
a reader detect.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

STREAM_ID: Final = re.compile(r"^\d{1,20}-\d{1,20}$")


def parse_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def to_changes(stream_id: str, fields: dict[Any, Any], after: str = "") -> list[dict[str, Any]]:
    """A stream entry as the WebSocket frames the UI gets, those after ``after`` only."""
    f = {str(k): str(v) for k, v in fields.items()}
    intent_id = f.get("intentId", "")
    if "changes" not in f:  # one change (the control plane's, or written before entries)
        if after and parse_id(stream_id) <= parse_id(after):
            return []
        return [
            {
                "type": "change",
                "id": stream_id,
                "intentId": intent_id,
                "seq": int(f.get("seq", 0)),
                "topic": f.get("topic", ""),
                "state": f.get("state", ""),
                "eventId": f.get("eventId", ""),
                "ms": int(f.get("ms", 0)),
                "data": orjson.loads(f["data"]) if f.get("data") else {},
            }
        ]
    ms, last = parse_id(stream_id)
    changes = orjson.loads(f["changes"])
    if "states" in f:
        changes = [[*c, state] for c, state in zip(changes, orjson.loads(f["states"]), strict=True)]
    first = last - len(changes) + 1
    skip = 0
    if after:  # a reader resuming inside this entry: the changes up to ``after`` were sent
        after_ms, after_seq = parse_id(after)
        if after_ms == ms:
            skip = max(0, after_seq - first + 1)
        elif after_ms > ms:
            return []
    return [
        {
            "type": "change",
            "id": f"{ms}-{first + j}",
            "intentId": intent_id,
            "seq": seq,
            "topic": topic,
            "state": state,
            "eventId": event_id,
            "ms": at,
            "data": data,
        }
        for j, (seq, topic, event_id, at, data, state) in enumerate(changes)
        if j >= skip
    ]


class ChangeStream:
    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self.key = f"{prefix}changes"

    async def head(self) -> str:
        last = await self._redis.xrevrange(self.key, count=1)
        return str(last[0][0]) if last else "0-0"

    async def first_id(self) -> str | None:
        first: Any = await self._redis.xrange(self.key, count=1)
        changes = to_changes(str(first[0][0]), first[0][1]) if first else []
        return str(changes[0]["id"]) if changes else None

    async def after(self, last_seen: str, count: int = 1000) -> list[dict[str, Any]]:
        """The changes strictly after ``last_seen``, oldest first, from up to ``count``
        entries (an entry may hold several changes)."""
        entries: Any = await self._redis.xrange(self.key, f"({last_seen}", "+", count=count)
        return [c for i, f in entries for c in to_changes(str(i), f, last_seen)]

    async def tail(self, last_seen: str, block_ms: int, count: int = 1000) -> list[dict[str, Any]]:
        """Changes after ``last_seen``, waiting up to ``block_ms`` for the first."""
        reply: Any = await self._redis.xread({self.key: last_seen}, count=count, block=block_ms)
        if not reply:
            return []
        return [c for i, f in reply[0][1] for c in to_changes(str(i), f, last_seen)]
