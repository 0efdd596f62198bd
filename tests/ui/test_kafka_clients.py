"""A probe's Kafka clients leave no connection behind, wherever a cancellation lands.

Against the real broker, reached through a proxy that holds each answer back ``DELAY_S`` (so
bootstrap's requests take long enough to be cancelled inside, on a loaded machine too): each
probe is cancelled at points spread over its run, and after each one no ``AIOKafkaConnection``
of ours is open and nothing warned ``ResourceWarning``.  Without ``ui.kafka_clients.running``
(a plain start / try / finally stop), the points inside bootstrap's metadata request leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import AIOKafkaConnection

from ui.kafka_clients import running
from ui.metrics import consumer_lag

DELAY_S = 0.08
"""How long the proxy holds back each chunk the broker sends."""
POINTS = 24
"""Cancellation points per probe, every ``DELAY_S / 4``: bootstrap's version and metadata
requests (its first ``2 * DELAY_S``) and past them."""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def slow_kafka(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A bootstrap address whose answers come ``DELAY_S`` late.  Only bootstrap goes through
    it: the metadata it returns names the broker itself, which the clients then use."""
    host, port = kafka_bootstrap.rsplit(":", 1)

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_pipe(client_r, broker_w, 0.0), _pipe(broker_r, client_w, DELAY_S))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def list_topics(kafka: str) -> None:
    """What ``/health`` does to Kafka (``ui.health``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=3000)
    async with running(admin.start, admin.close):
        await admin.list_topics()


def open_connections() -> set[AIOKafkaConnection]:
    return {o for o in gc.get_objects() if isinstance(o, AIOKafkaConnection) and o.connected()}


async def leaks_when_cancelled(probe: Callable[[], Awaitable[object]]) -> list[str]:
    """Where (ms after its start) cancelling ``probe`` left a connection open or warned."""
    others = open_connections()  # other modules' clients in this session, not ours to judge
    leaks = []
    for i in range(1, POINTS + 1):
        at = DELAY_S * i / 4
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            task = asyncio.ensure_future(probe())
            await asyncio.sleep(at)
            task.cancel()
            await asyncio.wait([task])
            await asyncio.sleep(0.01)  # the transports' close callbacks
            gc.collect()  # a leaked connection in a cycle: its __del__ warns
            left = open_connections() - others
        resource = [str(w.message) for w in warned if issubclass(w.category, ResourceWarning)]
        if left or resource:
            leaks.append(f"{at * 1000:.0f} ms: {len(left)} open, {resource}")
            for conn in left:  # so one leak does not count again at the next point
                conn.close()
    return leaks


@pytest.mark.slow
async def test_a_cancelled_topic_listing_leaves_no_connection(slow_kafka: str) -> None:
    assert await leaks_when_cancelled(lambda: list_topics(slow_kafka)) == []


@pytest.mark.slow
async def test_a_cancelled_lag_probe_leaves_no_connection(slow_kafka: str) -> None:
    assert await leaks_when_cancelled(lambda: consumer_lag(slow_kafka)) == []


async def test_a_start_that_fails_still_stops_the_client() -> None:
    stopped: list[bool] = []

    async def start() -> None:
        raise ConnectionError("broker away")

    async def stop() -> None:
        stopped.append(True)

    with pytest.raises(ConnectionError):
        async with running(start, stop):
            pytest.fail("the block must not run")
    assert stopped == [True]


async def test_a_cancel_during_start_waits_for_it_then_stops() -> None:
    events: list[str] = []
    release = asyncio.Event()

    async def start() -> None:
        await release.wait()
        events.append("started")

    async def stop() -> None:
        events.append("stopped")

    async def probe() -> None:
        async with running(start, stop):
            events.append("block")

    task = asyncio.ensure_future(probe())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    assert not task.done()  # held until start() is over
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["started", "stopped"]
