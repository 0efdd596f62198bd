"""Project: the single writer of the event store and the read models.

Record shapes:
    in   every stage's output topic: Event(any type)
    out  PostgreSQL ``events`` (idempotent on event_id), Redis ``intent:{id}``, ``plan:{id}``,
         ``positions:{strategy}``, stats and the ``changes`` stream (see store/readmodel.py)
    in   sep.control: Event(control.*, risk.limits_changed, strategy.*, ...)
    out  PostgreSQL ``operator_events``, Redis ``control`` and ``changes``
         (see store/control_log.py): the control plane is not an intent's facts

The batch is stored in PostgreSQL first, then applied to Redis; only when both have returned
does ``process`` return, and only then does the agent ack the records (so their offsets can be
committed).  A crash in between replays the batch, and both writes are idempotent.

Why not Redis first, or both at once (it would save the PostgreSQL round trip, a few ms of
the event -> WebSocket latency): the change stream is what the UI shows, and a change shown
must be one the store holds or will hold.  A crash alone would not break that (the batch is
redelivered and stored), but a record PostgreSQL refuses (``asyncpg.DataError``, see
``retry_forever``) is dead-lettered, never stored, never redelivered: applied to Redis
first, it would stay in the live view and the change stream for good, and ``sep replay``
would rebuild a different state.  (``tests/stages/test_project.py`` pins this.)

Batches: ``topology.yaml`` gives project ``within_ms: 10``: a pass waits up to 10 ms for
more records.  Session 10 tried 0 (no record waits for a timer on its way to the
WebSocket); measured side by side, passes of a few records each cost the steady pipeline
~8 % more CPU and ~30 % more submit -> ``plan.created`` latency at 500/s (project shares the
worker's loop with the chain), and event -> WebSocket p50 did not measurably improve
(bench/RESULTS.md, session 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg

from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.stages.base import Emit, Record, StageContext, event_of, now_ms
from pipeline.store import metrics
from pipeline.store.control_log import apply_control
from pipeline.store.eventstore import EventStore
from pipeline.store.facts import decode_facts
from pipeline.store.readmodel import ReadModel

log = logging.getLogger(__name__)
REFRESH_INTERVAL_S = 0.25
REFRESH_DUTY = 10
REFRESH_BATCH = 64


class ProjectStage:
    name = "project"

    @staticmethod
    def retry_forever(exc: BaseException) -> bool:
        """PostgreSQL or Redis away: retry until they are back rather than dead-letter facts
        that belong in the store.  A value PostgreSQL refuses (``DataError``) will never be
        stored by retrying: the batch is retried record by record and the record that fails
        goes to the dead-letter topic, so the others are stored and the stage goes on."""
        return not isinstance(exc, asyncpg.DataError)

    def __init__(self, context: StageContext) -> None:
        self._context = context
        self._store: EventStore | None = None
        self._read_model: ReadModel | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.stored = 0

    async def start(self) -> None:
        settings, risk = self._context.settings, self._context.topology.risk
        self._store = await EventStore.connect(settings.postgres)
        self._read_model = ReadModel.connect(
            settings.redis,
            settings.redis_prefix,
            quote_asset=risk.quote_asset,
            reference_prices=dict(risk.reference_prices),
        )
        self._refresher = asyncio.create_task(self._refresh_positions(), name="positions")

    async def _refresh_positions(self) -> None:
        """Refresh dirty positions, spending at most ~1/REFRESH_DUTY of the time on it.

        A refresh folds a strategy's new fills into its ledger, but one that must read all
        the fills (a late or changed fill) costs what the history costs; pausing in proportion
        to how long the last round took keeps that from crowding out the stage (positions
        then lag a little more, never the facts).
        """
        assert self._read_model is not None
        delay = REFRESH_INTERVAL_S
        loop = asyncio.get_running_loop()
        while True:
            try:
                started = loop.time()
                refreshed = await self._read_model.refresh_dirty(REFRESH_BATCH)
                took = loop.time() - started
                # Drained: wait a period (a strategy under constant fills is recomputed once
                # per period, not in a busy loop).  More to do: only the duty-cycle pause.
                drained = refreshed < REFRESH_BATCH
                await asyncio.sleep(
                    max(REFRESH_INTERVAL_S if drained else 0.0, took * (REFRESH_DUTY - 1))
                )
                delay = REFRESH_INTERVAL_S
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: the dirty marks stay in Redis; try again later
                log.exception("positions refresh failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._store is not None:
            await self._store.close()
        if self._read_model is not None:
            await self._read_model.close()

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        if self._store is None or self._read_model is None:
            raise RuntimeError("ProjectStage.process before start()")
        control = [event_of(r) for r in records if r.topic == CONTROL_TOPIC]
        if control:
            await self._store.append_operator(control)
            await apply_control(self._read_model.redis, self._read_model.prefix, control)
            records = [r for r in records if r.topic != CONTROL_TOPIC]
        # Only stored and projected here: the envelope and the payload's JSON values are
        # enough (``facts.py``), unless a fused stage handed the event over in memory.
        events = [r.event if r.event is not None else decode_facts(r.value) for r in records]
        if not events:
            return
        self.stored += await self._store.append(events)
        # Positions are not computed here: the apply script marks the strategies whose fills
        # changed dirty (durably), and a background task folds their new fills in at most
        # every REFRESH_INTERVAL_S, for all of a batch's and the next ones' fills at once.
        # The batch's metrics ride on the same Redis round trip.
        read_model, now = self._read_model, now_ms()
        await read_model.apply(
            events,
            positions="mark",
            also=lambda pipe: metrics.add_to(pipe, read_model.prefix, events, now),
        )


def build(context: StageContext) -> ProjectStage:
    return ProjectStage(context)
