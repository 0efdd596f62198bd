"""One worker process: the faust App with every stage of the topology (or a chosen subset).

Workers are identical and share one consumer group per app id; run more of them to spread
the partitions (the layout that measured fastest on 2 cores is in the README).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust

from pipeline.config import Settings
from pipeline.plugins.manager import build_venues
from pipeline.runtime.agents import Lifecycle, load_builder, table_factory, wire_stage
from pipeline.runtime.app import build_app
from pipeline.stages.base import StageContext
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)


class SepApp(faust.App):  # type: ignore[misc]
    """The faust App plus the lifecycle of our stages and venues."""

    lifecycle: Lifecycle

    async def on_stop(self) -> None:
        await self.lifecycle.stop()
        await super().on_stop()


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
    return app


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
    app = build_worker_app(topology, settings, stages)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
