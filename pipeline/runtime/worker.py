"""One worker process: the topology's stages (or a chosen subset) over one Kafka consumer.

faust-streaming is the application framework: the worker is a ``faust.App`` run by
``faust.Worker`` (process lifecycle, signals, logging).  The hot path is not faust's: its
per-record Stream and conductor, its consumer thread and its ack bookkeeping cost ~15x the
CPU of plain batched aiokafka and lost records after rebalances, so the App boots without
its Kafka services and the stages run on ``pipeline.runtime.delivery`` (batches in, outputs
acknowledged, offsets committed by an explicit ledger; changelog-backed tables of our own).

Workers are identical and share one consumer group per app id; run more of them to spread the
partitions.  A singleton stage (the strategy runner) runs in a worker of its own
(``--stages strategy_runner``) that holds every partition of its inputs
(``pipeline.runtime.placement``).  A stop (SIGTERM/SIGINT) drains the runtime first, then
stops the stages, venues and stores, within ``STOP_DRAIN_S`` plus the stores' own close.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

import faust
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faust.app.base import BootStrategy

from pipeline.config import Settings
from pipeline.control.feed import ControlFeed
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.logs import logging_config
from pipeline.market.books import TOPIC as BOOKS_TOPIC
from pipeline.market.books import BookFeed
from pipeline.market.feed import TOPIC as MARKET_TOPIC
from pipeline.market.feed import PoolFeed
from pipeline.market.mirror import MarketMirror
from pipeline.market.publisher import MarketPublisher
from pipeline.plugins.manager import build_venues, make_plugin_manager, market_sources
from pipeline.plugins.venue import PaperTwin
from pipeline.risk.feed import RiskFeed
from pipeline.runtime import diagnostics, gc_tuning, orphan
from pipeline.runtime.app import group_id
from pipeline.runtime.assembly import build_groups
from pipeline.runtime.delivery import patches
from pipeline.runtime.delivery.kafka import KafkaRuntime
from pipeline.runtime.delivery.lanes import policy_of
from pipeline.runtime.delivery.patches import Gathering
from pipeline.runtime.delivery.singleton import singleton_assignor
from pipeline.runtime.delivery.sink import KafkaSink
from pipeline.runtime.delivery.tables import TableSet
from pipeline.runtime.lane_workers import lane_stages, worker_view
from pipeline.runtime.lifecycle import Lifecycle
from pipeline.runtime.placement import leaves_cores, place, process_niceness
from pipeline.runtime.topics import LaneTopicsError, check_lane_topics
from pipeline.stages.base import StageContext
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)

START_RETRY_S = (0.5, 1.0, 2.0, 5.0)


class _LifecycleOnly(BootStrategy):  # type: ignore[misc]
    """faust's services without its Kafka consumer, producer, agents, tables or web server."""

    enable_kafka = False
    enable_web = False
    enable_sensors = False


def build_runtime(
    topology: Topology,
    settings: Settings,
    stages: Sequence[str] | None = None,
    *,
    fuse: bool | None = None,
    lane: str | None = None,
) -> tuple[KafkaRuntime, Lifecycle]:
    """The worker's stage groups over one consumer, and the lifecycle of what they use.
    ``lane``: a worker of that dedicated lane (``pipeline.runtime.lane_workers``)."""
    patches.check()
    fuse = settings.fusion if fuse is None else fuse
    # Which lane topics the scheduled stages read here: a dedicated lane's, or the others.
    topology = worker_view(topology, lane)
    if lane is not None and stages is None:
        stages = lane_stages(topology)
    placement = place(topology, stages)
    stages = None if placement.everything else placement.stages
    group = group_id(topology, stages, lane)
    # A lane worker's planner takes its executor's reports in memory: it reads no topic
    # but its lane's (sep.executions whole would be every lane's reports).
    feedback = settings.fusion_feedback or lane is not None
    context = StageContext(
        topology=topology, settings=settings, venues=build_venues(topology, settings.data_dir)
    )
    lifecycle = Lifecycle(context)
    control = next((t for t in topology.topics if t.name == CONTROL_TOPIC), None)
    if control is not None:  # every worker obeys the control plane, whatever its stages
        lifecycle.control_feed = ControlFeed(settings.kafka, partitions=control.partitions)
        context.control = lifecycle.control_feed.state
    tables = TableSet(
        group,
        decisions_from=settings.decisions_from,
        topic_partitions={t.name: t.partitions for t in topology.topics},
        ttl_s=settings.decision_ttl_s,
    )
    sink = KafkaSink(
        settings.kafka,
        client_id=f"{group}-worker",
        linger_ms=settings.producer_linger_ms,
        partitions={t.name: t.partitions for t in topology.topics},
    )
    if control is not None and "validate" in placement.stages:
        # Validate judges exposure per strategy across every partition (pipeline.risk.feed);
        # its breakers publish on the control topic.  Before the stages are built: they
        # take the feed from the context.
        async def send(topic: str, key: bytes, value: bytes) -> object:
            return await (await sink.send(topic, key, value))

        lifecycle.risk_feed = RiskFeed(
            settings.kafka, topology, send, wait_ms=settings.risk_feed_wait_ms
        )
        context.risk = lifecycle.risk_feed
    groups = build_groups(topology, context, lifecycle, tables, placement.stages, fuse, feedback)
    if "plan" in placement.stages and any(t.name == MARKET_TOPIC for t in topology.topics):
        _wire_market(settings, context, lifecycle, sink)
    runtime = KafkaRuntime(
        settings.kafka,
        group,
        groups,
        tables,
        sink,
        trace=settings.trace_batches,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        fetch_idle_wait_ms=settings.fetch_idle_wait_ms,
        assignor=singleton_assignor(time.time_ns())
        if placement.singleton
        else RangePartitionAssignor,
        lanes=policy_of(topology),
        pipelined_tail=settings.pipelined_tail,
        # Not a singleton (the strategy runner reacts to market data) nor a dedicated lane's
        # worker (urgent records): they leave the cores free by running little.
        gathering=Gathering(wait_ms=settings.fetch_gather_ms)
        if settings.fetch_gather_ms > 0
        and leaves_cores(topology, placement)
        and not placement.singleton
        and lane is None
        else None,
    )
    return runtime, lifecycle


def _wire_market(
    settings: Settings, context: StageContext, lifecycle: Lifecycle, sink: KafkaSink
) -> None:
    """The planner follows the market topic; this worker publishes its venues' market data."""

    async def send(topic: str, key: bytes, value: bytes) -> object:
        return await (await sink.send(topic, key, value))

    publisher = MarketPublisher(market_sources(make_plugin_manager()), context.venues, send)
    lifecycle.feed = PoolFeed(settings.kafka, MARKET_TOPIC)
    lifecycle.publisher = publisher
    context.market = lifecycle.feed
    twins = {n: v for n, v in context.venues.items() if isinstance(v, PaperTwin)}
    if twins:  # paper mode: the twins' pools follow their live venues' published states
        lifecycle.mirror = MarketMirror(lifecycle.feed, twins)
    context.market_venues = frozenset(publisher.venues)
    # Books only when a book venue is enabled (none is by default) and the topic is declared.
    books = next((t for t in context.topology.topics if t.name == BOOKS_TOPIC), None)
    if books is not None and publisher.book_venues:
        topology = context.topology
        known = {a.symbol for a in topology.assets}

        def decimals(symbol: str) -> int | None:
            return topology.asset(symbol).decimals if symbol in known else None

        lifecycle.book_feed = BookFeed(
            settings.kafka,
            decimals,
            BOOKS_TOPIC,
            partitions=books.partitions,
            venues=context.venues,  # books of venues it can place child orders on, only
        )
        context.books = lifecycle.book_feed


class SepApp(faust.App):  # type: ignore[misc]
    """The faust App: starts the stages' lifecycle, then the runtime; stops them in reverse."""

    BootStrategy = _LifecycleOnly
    runtime: KafkaRuntime
    lifecycle: Lifecycle
    settings_: Settings
    exit_code = 0

    async def on_started(self) -> None:
        await super().on_started()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, diagnostics.log_state, self.runtime)
        self._running = asyncio.ensure_future(self._run())
        parent = orphan.expected_parent()
        if parent is not None:  # started by a harness: stop when it is gone (orphan.py)
            self._parent_watch = asyncio.ensure_future(orphan.watch_parent(parent))

    async def _run(self) -> None:
        await self.runtime.sink.start()  # the market publisher sends from the start
        for attempt in range(1_000_000):
            try:
                await self.lifecycle.ensure_started()
                break
            except Exception:
                delay = START_RETRY_S[min(attempt, len(START_RETRY_S) - 1)]
                log.exception("stages failed to start; retrying", extra={"retry_in_s": delay})
                await asyncio.sleep(delay)
        gc_tuning.freeze()  # venues, pools and graphs are loaded: never scan them again
        await self.runtime.start()
        self.runtime.publish_health(self.settings_.redis, self.settings_.redis_prefix)
        log.info(
            "worker consuming",
            extra={
                "group": self.runtime.group_id,
                "topics": self.runtime.topics,
                "groups": [r.name for r in self.runtime.runners],
            },
        )
        await self.runtime.wait()
        if self.runtime.fatal is not None:
            self.exit_code = 1
            log.error("worker stopping after a failure", extra={"error": repr(self.runtime.fatal)})
            os.kill(os.getpid(), signal.SIGTERM)

    async def on_stop(self) -> None:
        running = getattr(self, "_running", None)
        if running is not None and not running.done():
            running.cancel()
        await self.runtime.stop()
        await self.lifecycle.stop()
        await super().on_stop()


def run_worker(
    topology: Topology,
    settings: Settings,
    stages: Sequence[str] | None = None,
    loglevel: str = "warning",
    lane: str | None = None,
) -> None:
    """Run a worker until SIGINT/SIGTERM; exits non-zero if the runtime failed, or at once
    (with the reason) when priority lanes are on and their topics are not as declared."""
    if topology.lanes is not None:
        try:
            asyncio.run(check_lane_topics(settings.kafka, topology))
        except LaneTopicsError as exc:
            sys.exit(f"sep worker: refusing to start: {exc}")
    try:
        import uvloop  # a faster event loop: most of a worker's time is asyncio machinery

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.set_event_loop(asyncio.new_event_loop())
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without
        log.warning("uvloop not installed; using the default event loop")
    gc_tuning.configure(settings.gc_threshold)
    placement = place(topology, stages) if stages else None
    niceness = process_niceness(topology, placement) if placement else 0
    if placement and niceness:
        # Before anything starts a thread (a thread inherits its creator's niceness).
        os.nice(niceness)
        log.info("lower CPU priority", extra={"niceness": niceness, "stages": placement.stages})
    runtime, lifecycle = build_runtime(topology, settings, stages, lane=lane)
    app = SepApp(runtime.group_id, web_enabled=False, datadir=str(settings.data_dir / "faust"))
    app.runtime, app.lifecycle, app.settings_ = runtime, lifecycle, settings
    # Our log format (every extra field, JSON in production): given no logging_config,
    # faust's worker replaces it with its own, which drops them.
    worker = faust.Worker(
        app,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
        logging_config=logging_config(settings.log_format, loglevel),
    )
    worker.spinner = None  # a terminal spinner writing escape codes into log files
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if app.exit_code:
            sys.exit(app.exit_code)
        raise exc
    if app.exit_code:
        sys.exit(app.exit_code)
