"""``GET /health``: each dependency's status, checked now, each within a short timeout; and
each live worker's own report (a stage that keeps failing, a partition whose records wait
while its committed offset does not move: see ``pipeline.store.worker_health``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from starlette.requests import Request
from starlette.responses import JSONResponse
from web3 import AsyncWeb3

from pipeline.store import worker_health
from ui.kafka_clients import running
from ui.services import Services, services_of

TIMEOUT_S = 3.0


async def _kafka(services: Services) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=services.settings.kafka, request_timeout_ms=int(TIMEOUT_S * 1000)
    )
    async with running(admin.start, admin.close):
        await admin.list_topics()


async def _postgres(services: Services) -> None:
    await services.store.now()


async def _redis(services: Services) -> None:
    await services.redis.ping()


async def _chain(services: Services) -> None:
    # The node the venues trade on: one JSON-RPC call (the block number) proves it answers.
    w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(services.settings.rpc))
    try:
        await w3.eth.block_number
    finally:
        await w3.provider.disconnect()


CHECKS: dict[str, Callable[[Services], Awaitable[None]]] = {
    "kafka": _kafka,
    "postgres": _postgres,
    "redis": _redis,
}
"""What ``/health`` answers for.  The chain is checked by the pipeline view only: a stack
running on the sim venue alone has no node, and is not degraded for it."""
OPTIONAL: dict[str, Callable[[Services], Awaitable[None]]] = {"chain": _chain}


async def check(name: str, services: Services) -> dict[str, Any]:
    """One dependency's status now: ``{"status": "ok" | "down", "latencyMs", "error"?}``."""
    started = time.monotonic()
    try:
        await asyncio.wait_for((CHECKS | OPTIONAL)[name](services), TIMEOUT_S)
    except Exception as exc:
        return {
            "status": "down",
            "error": repr(exc) if str(exc) else type(exc).__name__,
            "latencyMs": round((time.monotonic() - started) * 1000, 1),
        }
    return {"status": "ok", "latencyMs": round((time.monotonic() - started) * 1000, 1)}


async def health(request: Request) -> JSONResponse:
    services = services_of(request.app)
    results = await asyncio.gather(*(check(name, services) for name in CHECKS))
    dependencies = dict(zip(CHECKS, results, strict=True))
    try:
        workers = await asyncio.wait_for(
            worker_health.read_all(services.redis, services.settings.redis_prefix), TIMEOUT_S
        )
    except Exception:  # Redis is down: its own check says so
        workers = {}
    problems = worker_health.problems(workers)
    ok = all(d["status"] == "ok" for d in dependencies.values()) and not problems
    body = {
        "status": "ok" if ok else "degraded",
        # live: real transactions; paper: paper twins at live market data (the UI's header)
        "mode": services.topology.app.mode,
        "dependencies": dependencies,
        "eventStore": services.store.kind,
        "workers": workers,
        "problems": problems,
    }
    return JSONResponse(body, 200 if ok else 503)
