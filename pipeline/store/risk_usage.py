"""The risk engine's view in Redis (``{prefix}risk:usage``, JSON; ``pipeline.risk.usage``):
written by every validating worker after each breaker evaluation, read by ``GET /risk``.  It
expires after ``TTL_S``, so a report is never older than that while one exists."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

TTL_S = 10
KEY = "risk:usage"


async def publish(client: aioredis.Redis, prefix: str, report: dict[str, Any]) -> None:
    await client.set(f"{prefix}{KEY}", orjson.dumps(report), ex=TTL_S)


async def read(client: aioredis.Redis, prefix: str) -> dict[str, Any] | None:
    raw = await client.get(f"{prefix}{KEY}")
    return None if raw is None else dict(orjson.loads(raw))
