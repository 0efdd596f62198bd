"""The UI's short-lived Kafka clients (the ``/health`` check, the consumer-lag probe): started
and closed so that no connection outlives them, however the probe ends.

Why a cancelled ``start()`` is held back: aiokafka 0.14's ``AIOKafkaClient.bootstrap()`` opens a
connection, asks it for metadata, and closes it on ``KafkaError`` or ``TimeoutError``, but not
on ``CancelledError`` (the family of aio-libs/aiokafka#715).  A probe cancelled there -- its
``wait_for`` timed out, or the app shut down and cancelled the pipeline sampler mid-sample --
left a socket that the client's ``close()`` does not know about, closed only when garbage
collection ran ``AIOKafkaConnection.__del__`` (with a ResourceWarning).  Measured against the
real broker: cancelling the health check at 120 points across its run leaked a connection at
12 of them, the lag probe at 14.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


@asynccontextmanager
async def running(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> AsyncIterator[None]:
    """``start()`` a client, run the block, then ``stop()`` it (on error and cancel too).

    A cancellation that arrives while ``start()`` runs waits until ``start()`` is over, so every
    connection it opened is the client's when ``stop()`` closes them; then it propagates.  The
    wait is bounded by the client's ``request_timeout_ms`` (per connect and per request).
    """
    starting = asyncio.ensure_future(start())
    try:
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            await asyncio.wait([starting])
            if not starting.cancelled():
                starting.exception()  # seen: the caller is told of the cancellation instead
            raise
        yield
    finally:
        await stop()
