"""The change stream (``changes``, a Redis stream): read it from a last-seen id, or tail it.

Every applied event adds one entry (see ``readmodel.py``):

    1717000000000-0  intentId, seq, topic, state (after the change), eventId, ms, data (JSON of
                     the intent fields the event wrote)

Stream ids only grow, so "after this id" is a complete resume point — unless the stream was
trimmed past it (``MAXLEN``), which ``first_id`` lets a reader detect.
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


def to_change(stream_id: str, fields: dict[Any, Any]) -> dict[str, Any]:
    """A stream entry as the WebSocket frame the UI gets."""
    f = {str(k): str(v) for k, v in fields.items()}
    return {
        "type": "change",
        "id": stream_id,
        "intentId": f.get("intentId", ""),
        "seq": int(f.get("seq", 0)),
        "topic": f.get("topic", ""),
        "state": f.get("state", ""),
        "eventId": f.get("eventId", ""),
        "ms": int(f.get("ms", 0)),
        "data": orjson.loads(f["data"]) if f.get("data") else {},
    }


class ChangeStream:
    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self.key = f"{prefix}changes"

    async def head(self) -> str:
        last = await self._redis.xrevrange(self.key, count=1)
        return str(last[0][0]) if last else "0-0"

    async def first_id(self) -> str | None:
        first = await self._redis.xrange(self.key, count=1)
        return str(first[0][0]) if first else None

    async def after(self, last_seen: str, count: int = 1000) -> list[dict[str, Any]]:
        """Up to ``count`` changes strictly after ``last_seen``, oldest first."""
        entries: Any = await self._redis.xrange(self.key, f"({last_seen}", "+", count=count)
        return [to_change(str(i), f) for i, f in entries]

    async def tail(self, last_seen: str, block_ms: int, count: int = 1000) -> list[dict[str, Any]]:
        """Changes after ``last_seen``, waiting up to ``block_ms`` for the first."""
        reply: Any = await self._redis.xread({self.key: last_seen}, count=count, block=block_ms)
        if not reply:
            return []
        return [to_change(str(i), f) for i, f in reply[0][1]]
