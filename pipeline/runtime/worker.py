"""One worker process: the faust App with every stage of the topology (or a chosen subset).

Workers are identical and share one consumer group per app id; run more of them to spread
the partitions (the layout that measured fastest on 2 cores is in the README).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

import faust

from pipeline.config import Settings
from pipeline.market.feed import TOPIC as MARKET_TOPIC
from pipeline.market.feed import PoolFeed
from pipeline.market.publisher import MarketPublisher
from pipeline.plugins.manager import build_venues, make_plugin_manager, market_sources
from pipeline.runtime import diagnostics, gc_tuning
from pipeline.runtime.agents import Lifecycle, load_builder, table_factory, wire_stage
from pipeline.runtime.app import build_app
from pipeline.runtime.offsets import SafeOffsetsConsumer
from pipeline.stages.base import StageContext
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)


class SepApp(faust.App):  # type: ignore[misc]
    """The faust App plus the lifecycle of our stages and venues."""

    lifecycle: Lifecycle
    stage_subscribers: dict[str, int]
    """topic -> how many of this worker's stages read it (see runtime.offsets)."""

    async def on_started(self) -> None:
        # kill -USR1 <pid> logs what the consumer is doing (see pipeline.runtime.diagnostics).
        # Installed before faust waits for table recovery: a stuck recovery is worth seeing.
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGUSR1, diagnostics.log_consumer_state, self
        )
        await super().on_started()
        # Connect venues and start market data now rather than at the first batch: the
        # planner's first batch should already see every venue's pools.
        self._lifecycle_start = asyncio.ensure_future(self.lifecycle.ensure_started())
        self._lifecycle_start.add_done_callback(_freeze_when_started)

    async def on_stop(self) -> None:
        await self.lifecycle.stop()
        await super().on_stop()


def _freeze_when_started(started: asyncio.Future[None]) -> None:
    if not started.cancelled() and started.exception() is None:
        gc_tuning.freeze()  # venues, pools and graphs are loaded: never scan them again


def build_worker_app(
    topology: Topology, settings: Settings, stages: Sequence[str] | None = None, **overrides: Any
) -> SepApp:
    app = build_app(topology, settings, SepApp, stages, **overrides)
    assert isinstance(app, SepApp)
    context = StageContext(
        topology=topology, settings=settings, venues=build_venues(topology, settings.data_dir)
    )
    input_partitions = {t.name: t.partitions for t in topology.topics}
    lifecycle = Lifecycle(context)
    for spec in topology.stages:
        if stages is not None and spec.name not in stages:
            continue
        partitions = input_partitions[spec.inputs[0]]
        context.table = table_factory(app, partitions)
        processor = load_builder(spec)(context)
        lifecycle.processors.append(processor)
        wire_stage(app, spec, processor, lifecycle)
    app.lifecycle = lifecycle
    if stages is None or "plan" in stages:
        _wire_market(app, topology, settings, context, lifecycle)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def refetch_dropped_records() -> None:
        consumer = app.consumer
        if isinstance(consumer, SafeOffsetsConsumer):
            for tp, offset in await consumer.refetch_dropped():
                log.warning("record dropped before processing; fetching it again",
                            extra={"topic": tp.topic, "partition": tp.partition, "offset": offset})

    app.stage_subscribers = {}
    for spec in topology.stages:
        if stages is None or spec.name in stages:
            for topic in spec.inputs:
                app.stage_subscribers[topic] = app.stage_subscribers.get(topic, 0) + 1
    return app


def _wire_market(app: SepApp, topology: Topology, settings: Settings, context: StageContext,
                 lifecycle: Lifecycle) -> None:
    """The planner follows the market topic; this worker publishes its venues' market data."""
    if not any(t.name == MARKET_TOPIC for t in topology.topics):
        return
    producer = app.producer

    async def send(topic: str, key: bytes, value: bytes) -> object:
        return await (await producer.send(topic, key, value, None, None, None))

    publisher = MarketPublisher(market_sources(make_plugin_manager()), context.venues, send)
    lifecycle.feed = PoolFeed(settings.kafka, MARKET_TOPIC)
    lifecycle.publisher = publisher
    context.market = lifecycle.feed
    context.market_venues = frozenset(publisher.venues)


def run_worker(
    topology: Topology,
    settings: Settings,
    stages: Sequence[str] | None = None,
    loglevel: str = "warning",
) -> None:
    """Run a worker until SIGINT/SIGTERM (faust handles both gracefully)."""
    try:
        import uvloop  # a faster event loop: most of a worker's time is asyncio machinery

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.set_event_loop(asyncio.new_event_loop())
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without
        log.warning("uvloop not installed; using the default event loop")
    gc_tuning.configure()
    app = build_worker_app(topology, settings, stages)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
