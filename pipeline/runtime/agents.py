"""Turn each stage of the topology into a faust agent: a thin loop around its processor.

Each agent takes a micro-batch (``take_events``), hands plain ``Record``s to the stage's
processor, waits until every output it emitted is acknowledged by the broker, and only then
returns to faust, which acks the input records (so their offsets become committable).
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust

from pipeline.market.feed import PoolFeed
from pipeline.market.publisher import MarketPublisher
from pipeline.runtime import diagnostics
from pipeline.runtime.tables import FaustTableAdapter
from pipeline.stages.base import (
    Emit,
    Output,
    Record,
    StageContext,
    StageProcessor,
    StageTable,
)
from pipeline.stages.rejections import dead_letter
from pipeline.topology.models import StageSpec

log = logging.getLogger(__name__)


def load_builder(spec: StageSpec) -> Callable[[StageContext], StageProcessor]:
    module_name, attr = spec.function.split(":")
    builder = getattr(importlib.import_module(module_name), attr)
    if not callable(builder):
        raise TypeError(f"stage {spec.name}: {spec.function} is not callable")
    return builder  # type: ignore[no-any-return]


class Lifecycle:
    """Starts the market feed, venues, market publishers and processors once; stops them.

    Started when the worker is up (``SepApp.on_started``) and awaited before each batch, so
    the first batch never runs against venues that are not connected yet.
    """

    def __init__(self, context: StageContext) -> None:
        self._context = context
        self.processors: list[StageProcessor] = []
        self.feed: PoolFeed | None = None
        self.publisher: MarketPublisher | None = None
        self._started: asyncio.Task[None] | None = None
        self._up: set[object] = set()
        """What has started (by identity): a retried start skips it."""

    async def _start(self) -> None:
        if self.feed is not None and self.feed not in self._up:
            await self.feed.start()
            self._up.add(self.feed)
        for venue in self._context.venues.values():
            if venue not in self._up:
                await venue.start()
                self._up.add(venue)
        if self.publisher is not None and self.publisher not in self._up:
            self.publisher.start()
            self._up.add(self.publisher)
        for processor in self.processors:
            if processor not in self._up:
                await processor.start()
                self._up.add(processor)
        log.info("stages started", extra={"stages": [p.name for p in self.processors]})

    async def ensure_started(self) -> None:
        """Start everything once; after a failed start, the next call tries again.

        A start can fail for a passing reason (a store still coming up, a shared SQLite file
        another worker is initialising); remembering the failure would stall the worker for
        good, so the agent's batch fails instead and the next one retries what is not up.
        """
        if self._started is not None and self._started.done() and (
                self._started.cancelled() or self._started.exception() is not None):
            log.warning("retrying the stages' start after a failure",
                        extra={"error": repr(None if self._started.cancelled()
                                             else self._started.exception())})
            await asyncio.sleep(1.0)
            self._started = None
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        if self._started is None or not self._started.done():
            return
        for processor in reversed(self.processors):
            if processor in self._up:
                await processor.stop()
        if self.publisher is not None and self.publisher in self._up:
            await self.publisher.stop()
        for venue in self._context.venues.values():
            if venue in self._up:
                await venue.stop()
        if self.feed is not None and self.feed in self._up:
            await self.feed.stop()
        self._up.clear()


def table_factory(app: faust.App, partitions: int) -> Callable[[str, str], StageTable]:
    def make(name: str, help: str) -> StageTable:
        table = app.Table(
            name, default=None, partitions=partitions, key_type=str, value_type=str, help=help
        )
        return FaustTableAdapter(table)

    return make


def _record(event: Any) -> Record:
    message = event.message
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000),
        key=message.key,
        value=message.value,
    )


async def batches(
    stream: Any, max_: int, within_s: float, name: str = ""
) -> AsyncIterator[list[Any]]:
    """Micro-batches of faust events that are acked only by the caller, after processing.

    Not ``Stream.take_events``: its ``finally`` acks the buffered events even when the batch
    was interrupted (a crash, or the cancellation of a graceful shutdown), so their offsets
    get committed unprocessed and the records are skipped after a restart.  Here a pump task
    reads the stream with acks disabled; an interrupted batch stays unacked and is
    redelivered.  (Shape: stream -> queue -> [event, ...] -> caller -> stream.ack(event).)
    """
    stream.enable_acks = False
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_ * 2)

    async def pump() -> None:
        note_delivered = getattr(stream.app.consumer, "note_delivered", None)
        async for _value in stream:
            event = stream.current_event
            if note_delivered is not None:  # see runtime.offsets: dropped-record detection
                note_delivered(event.message)
            await queue.put(event)

    pumping = asyncio.ensure_future(pump())
    if name:
        diagnostics.PUMP_DEPTH[name] = queue.qsize
    loop = asyncio.get_running_loop()
    try:
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + within_s
            while len(batch) < max_:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            yield batch
    finally:
        pumping.cancel()


# SEP_TRACE_BATCHES=1 logs every batch's size and timings (for finding the slow stage).
TRACE_BATCHES = bool(os.environ.get("SEP_TRACE_BATCHES"))
RETRY_DELAYS_S = (0.1, 0.5, 2.0)
MAX_BACKOFF_S = 10.0


async def process_safely(processor: StageProcessor, records: list[Record], emit: Emit) -> None:
    """Process a batch so that nothing is lost and one bad record cannot stall a stage.

    A failing batch is retried (outputs are idempotent, so re-emitting is harmless).  If it
    keeps failing, each record is processed alone and the ones that still fail go to the dead
    letter topic with the error.  Processors whose failures are infrastructure (the project
    stage: PostgreSQL or Redis away) set ``retry_forever`` (a bool, or a function of the
    error) and are retried until the dependency is back, because dead-lettering would drop
    facts from the store; an error the data itself causes is not retried forever, or one
    poison record would stop the stage for good.
    """
    attempt = 0
    while True:
        try:
            await processor.process(records, emit)
            return
        except Exception as exc:
            retry = getattr(processor, "retry_forever", False)
            forever = bool(retry(exc) if callable(retry) else retry)
            if not forever and attempt >= len(RETRY_DELAYS_S):
                break
            delay = min(
                MAX_BACKOFF_S,
                RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                * (2 ** max(0, attempt - len(RETRY_DELAYS_S) + 1)),
            )
            log.warning(
                "stage batch failed, retrying",
                exc_info=True,
                extra={
                    "stage": processor.name,
                    "records": len(records),
                    "attempt": attempt + 1,
                    "retry_in_s": delay,
                    "error": repr(exc),
                },
            )
            attempt += 1
            await asyncio.sleep(delay)
    for record in records:
        try:
            await processor.process([record], emit)
        except Exception as exc:
            log.error(
                "record dead-lettered",
                extra={
                    "stage": processor.name,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": repr(exc),
                },
            )
            key = f"dl-{processor.name}-{record.topic}-{record.partition}-{record.offset}"
            await emit(
                dead_letter(
                    key,
                    record.value,
                    reason=f"{processor.name} failed: {exc!r}",
                    errors=(),
                    source=f"{record.topic}/{record.partition}/{record.offset}",
                    correlation_id="",
                )
            )


MAX_UNSETTLED_BATCHES = 4
"""Batches whose outputs may still be in flight while the stage processes the next one."""
SETTLE_ON_STOP_S = 5.0


async def settle(
    app: faust.App, stream: Any, events: list[Any], delivered: Awaitable[Any],
    previous: asyncio.Future[None] | None, name: str, timing: tuple[float, float, int],
) -> None:
    """Ack a batch's input records once its outputs are delivered and the batch before it
    is settled (so acks stay in offset order); a failed delivery acks nothing from there on."""
    await delivered
    if previous is not None:
        await previous
    started, processed, outputs = timing
    if TRACE_BATCHES:
        log.info(
            "batch stage=%s records=%d outputs=%d process_ms=%.2f deliver_ms=%.2f",
            name, len(events), outputs, (processed - started) * 1000,
            (time.perf_counter() - processed) * 1000,
        )
    consumer = app.consumer
    for event in events:
        consumer.mark_processed(event.message)  # see runtime.offsets
        await stream.ack(event)
    diagnostics.LAST_BATCH_AT[name] = time.monotonic()


def wire_stage(
    app: faust.App, spec: StageSpec, processor: StageProcessor, lifecycle: Lifecycle
) -> Any:
    """The stage as a faust agent.

    Delivery is pipelined: a batch's outputs are handed to the producer and the agent goes on
    to the next batch while the broker acknowledges them; a ``settle`` task acks the inputs
    once they are delivered.  Waiting for the acknowledgement before taking the next batch
    (10-30 ms a hop under load) had every record queue behind the previous batch's round trip.
    At most ``MAX_UNSETTLED_BATCHES`` are in flight, and a delivery failure stops the agent
    with the failed batch and every later one unacked (they are redelivered).
    """
    channel = app.topic(*spec.inputs, key_serializer="raw", value_serializer="raw")
    producer = app.producer

    async def agent(stream: Any) -> None:
        unsettled: collections.deque[asyncio.Future[None]] = collections.deque()
        try:
            async for events in batches(
                stream, spec.batch.max, spec.batch.within_ms / 1000, spec.name
            ):
                await lifecycle.ensure_started()
                pending: list[Awaitable[Any]] = []

                async def emit(out: Output, pending: list[Awaitable[Any]] = pending) -> None:
                    headers = list(out.headers) or None
                    pending.append(
                        await producer.send(out.topic, out.key, out.value, None, None, headers)
                    )

                started = time.perf_counter()
                await process_safely(processor, [_record(e) for e in events], emit)
                timing = (started, time.perf_counter(), len(pending))
                unsettled.append(asyncio.ensure_future(settle(
                    app, stream, events, asyncio.gather(*pending),
                    unsettled[-1] if unsettled else None, spec.name, timing)))
                while unsettled and unsettled[0].done():
                    unsettled.popleft().result()  # a failed delivery raises here
                while len(unsettled) > MAX_UNSETTLED_BATCHES:
                    await unsettled.popleft()
        finally:
            # Stopping (or crashing): let deliveries already under way settle, so their
            # inputs are acked and not replayed needlessly; a failure among them is moot now.
            if unsettled:
                done, _ = await asyncio.wait(unsettled, timeout=SETTLE_ON_STOP_S)
                for task in done:
                    task.exception()  # retrieved: a failure here is moot, the batch replays

    agent.__name__ = agent.__qualname__ = f"{spec.name}_stage"
    return app.agent(channel, name=f"sep.{spec.name}", concurrency=spec.concurrency)(agent)
