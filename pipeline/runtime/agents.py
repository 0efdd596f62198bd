"""Turn each stage of the topology into a faust agent: a thin loop around its processor.

Each agent takes a micro-batch (``take_events``), hands plain ``Record``s to the stage's
processor, waits until every output it emitted is acknowledged by the broker, and only then
returns to faust, which acks the input records (so their offsets become committable).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from pipeline.runtime.tables import FaustTableAdapter
from pipeline.stages.base import Output, Record, StageContext, StageProcessor, StageTable
from pipeline.topology.models import StageSpec

log = logging.getLogger(__name__)


def load_builder(spec: StageSpec) -> Callable[[StageContext], StageProcessor]:
    module_name, attr = spec.function.split(":")
    builder = getattr(importlib.import_module(module_name), attr)
    if not callable(builder):
        raise TypeError(f"stage {spec.name}: {spec.function} is not callable")
    return builder  # type: ignore[no-any-return]


class Lifecycle:
    """Starts venues and processors once, before the first batch; stops them at shutdown."""

    def __init__(self, context: StageContext) -> None:
        self._context = context
        self.processors: list[StageProcessor] = []
        self._started: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        for venue in self._context.venues.values():
            await venue.start()
        for processor in self.processors:
            await processor.start()
        log.info("stages started", extra={"stages": [p.name for p in self.processors]})

    async def ensure_started(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        if self._started is None or not self._started.done():
            return
        for processor in reversed(self.processors):
            await processor.stop()
        for venue in self._context.venues.values():
            await venue.stop()


def table_factory(app: faust.App, partitions: int) -> Callable[[str, str], StageTable]:
    def make(name: str, help: str) -> StageTable:
        table = app.Table(name, default=None, partitions=partitions, key_serializer="json",
                          value_serializer="json", help=help)
        return FaustTableAdapter(table)
    return make


def _record(event: Any) -> Record:
    message = event.message
    return Record(topic=message.topic, partition=message.partition, offset=message.offset,
                  timestamp_ms=int(message.timestamp * 1000), key=message.key,
                  value=message.value)


def wire_stage(app: faust.App, spec: StageSpec, processor: StageProcessor,
               lifecycle: Lifecycle) -> Any:
    channel = app.topic(*spec.inputs, key_serializer="raw", value_serializer="raw")
    producer = app.producer

    async def agent(stream: Any) -> None:
        async for events in stream.take_events(spec.batch.max, spec.batch.within_ms / 1000):
            await lifecycle.ensure_started()
            pending: list[Awaitable[Any]] = []

            async def emit(out: Output, pending: list[Awaitable[Any]] = pending) -> None:
                headers = list(out.headers) or None
                pending.append(await producer.send(out.topic, out.key, out.value, None, None,
                                                   headers))

            await processor.process([_record(e) for e in events], emit)
            if pending:
                await asyncio.gather(*pending)  # delivered before the inputs are acked

    agent.__name__ = agent.__qualname__ = f"{spec.name}_stage"
    return app.agent(channel, name=f"sep.{spec.name}", concurrency=spec.concurrency)(agent)
