"""One real request per service, shared by the embedded services and by the check of
services given by URL (``SEP_KAFKA``, ``SEP_POSTGRES``, ``SEP_REDIS``)."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

# aiokafka ships no type information (no py.typed). `unused-ignore` keeps this line valid
# once pyproject's mypy overrides list aiokafka (warn_unused_ignores is on).
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped,unused-ignore]


class NotReadyError(Exception):
    """The service answered, but is not ready to serve (e.g. no active controller yet)."""


async def check_kafka(bootstrap: str) -> None:
    """A metadata request must list at least one broker and an active controller.

    An open port is not enough: a KRaft broker answers with no brokers until the
    controller has unfenced it, and clients then fail in confusing ways.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    if not cluster["brokers"] or cluster["controller_id"] in (None, -1):
        raise NotReadyError(f"kafka cluster not ready yet: {cluster}")


async def check_postgres(dsn: str) -> None:
    """``select 1`` over a fresh connection."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        if await conn.fetchval("select 1") != 1:
            raise NotReadyError("select 1 did not return 1")
    finally:
        await conn.close()


async def check_redis(url: str) -> None:
    """PING; a server still loading its AOF answers with an error, so this waits for it."""
    client = aioredis.Redis.from_url(url, socket_timeout=3)
    try:
        if not await client.ping():
            raise NotReadyError("PING returned false")
    finally:
        await client.aclose()
