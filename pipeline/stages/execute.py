"""Execute: carry out each plan's steps through its venue, exactly once.

Record shapes:
    in   sep.plans       Event(plan.created{plan, intent})   (plan.rejected is ignored)
    out  sep.executions  exec.started, then per step exec.step_submitted and
                         exec.step_filled | exec.step_failed, then exec.completed | exec.failed;
                         or intent.expired when the window closed before anything was sent
                         (after exec.started, exec.step_failed "expired", if a crash came
                         between the two);
                         or exec.failed alone when a step names a venue this worker lacks
    out  sep.control     Event(venue.breaker_changed) when step outcomes open or close a
                         venue's breaker (``pipeline.breakers.execution``)

A kill switch covering the intent's strategy (``killed.py``): a step not sent yet fails with
reason ``killed`` (when the plan opens, the refusal is remembered with the opening, so a
redelivery says the same); a step already sent is waited for and reported as usual.

Exactly once: before sending a step the executor asks the venue whether it already has it
(``Venue.lookup``); a redelivered plan whose step was sent before a crash waits for that
submission's receipt instead of sending again; within a worker, a lock per step makes
lookup-then-submit one step at a time.  Event ids and ``seq`` are fixed by the plan
(started = n+1, step k submitted = n+2+2k, its outcome = n+3+2k), so re-processing re-emits
identical events that the store absorbs.  Whether a plan opened with ``exec.started`` or
``intent.expired`` is remembered (``sep-execute-openings``, see ``decisions.py``): that one
answer depends on the clock, and a redelivery past the deadline must not contradict it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal

from pipeline.breakers.execution import ExecutionBreakers, StepOutcome
from pipeline.codec import decode_event
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.control.state import ControlView
from pipeline.models.base import WireModel, wire_amount
from pipeline.models.events import (
    Event,
    ExecCompleted,
    ExecFailed,
    ExecStarted,
    ExecStepFailed,
    ExecStepFilled,
    ExecStepSubmitted,
    IntentExpired,
    PlanCreated,
    make_event,
)
from pipeline.models.plan import ExecutionStep, SwapMode
from pipeline.plugins.venue import (
    Fill,
    StepRejected,
    Submission,
    TransientVenueError,
    Venue,
    VenueError,
)
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.decisions import Decisions
from pipeline.stages.killed import KILLED, killed_step
from pipeline.stages.table_names import EXECUTE_OPENINGS

log = logging.getLogger(__name__)
RECEIPT_GRACE_S = 30.0  # a sent step is final only when the venue says so, even past the window
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def realised_slippage(steps: Sequence[ExecutionStep], fills: Sequence[Fill]) -> Decimal:
    """How much worse than quoted, over all the plan's steps: a fraction of the quote
    (negative means better)."""
    if steps[0].mode is SwapMode.EXACT_IN:
        quoted, got = sum(s.amount_out for s in steps), sum(f.amount_out for f in fills)
        ratio = (quoted - got) / quoted if quoted else None
    else:
        quoted, paid = sum(s.amount_in for s in steps), sum(f.amount_in for f in fills)
        ratio = (paid - quoted) / quoted if quoted else None
    # A ratio can have any number of decimal places; the wire takes 36.
    return wire_amount(ratio) if ratio is not None else Decimal(0)


def _reason(exc: VenueError) -> str:
    """A failed step's reason as ``exec.step_failed`` says it: ``code: detail``."""
    return f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason


class StepLocks:
    """One ``asyncio.Lock`` per step id, dropped when no run holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, step_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(step_id, asyncio.Lock())
        self._users[step_id] = self._users.get(step_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[step_id] -= 1
            if not self._users[step_id]:
                del self._users[step_id], self._locks[step_id]


class PlanRun:
    """One plan's execution: emits its events in order as things happen."""

    def __init__(
        self,
        event: Event,
        venues: Mapping[str, Venue],
        clock: Callable[[], int],
        emit: Emit,
        locks: StepLocks | None = None,
        openings: Decisions | None = None,
        record: Record | None = None,
        *,
        topic: str,
        control: ControlView | None = None,
        breakers: ExecutionBreakers | None = None,
    ) -> None:
        payload = event.payload_as(PlanCreated)
        self.plan, self.intent = payload.plan, payload.intent
        self._cause = event
        self._venues = venues
        self._clock = clock
        self._emit = emit
        self._locks = locks if locks is not None else StepLocks()
        self._openings = openings
        self._record = record
        self._last_id = event.event_id
        self._topic = topic
        self._control = control
        self._breakers = breakers
        self._planned_ms = int(event.timestamp.timestamp() * 1000)

    def _event(self, topic: str, payload: WireModel, seq_offset: int) -> Output:
        event = make_event(
            topic,
            payload,
            correlation_id=self.intent.id,
            seq=self._cause.seq + seq_offset,
            causation_id=self._last_id,
            at_ms=self._clock(),
            id_ms=self.intent.created_at_ms or 0,
        )
        self._last_id = event.event_id
        return Output.of_event(self._topic, event)

    async def _out(self, topic: str, payload: WireModel, seq_offset: int) -> None:
        await self._emit(self._event(topic, payload, seq_offset))

    async def _open(self, already: Submission | None) -> bool:
        """The plan's first event: ``exec.started``, or ``intent.expired`` if the window closed
        before anything was sent; whether to go on.

        Which one is remembered (``openings``): a delivery after a crash between
        ``exec.started`` and the first send, past the deadline, must not say
        ``intent.expired`` under the seq ``exec.started`` already has.  It says started
        again, and that the step was not sent in time.
        """
        deadline, now = self.intent.deadline_ms, self._clock()
        late = already is None and deadline is not None and now > deadline
        opened = self._openings.recall(self.intent.id) if self._openings is not None else None
        if opened is None:
            expired = late
            opened = [
                self._event(
                    "intent.expired",
                    IntentExpired(deadline_ms=deadline or 0, observed_at_ms=now, stage="execute"),
                    1,
                )
                if late
                else self._event(
                    "exec.started", ExecStarted(plan_id=self.plan.id, steps=len(self.plan.steps)), 1
                )
            ]
            first_venue = self.plan.steps[0].venue
            kill = None if late or already else killed_step(self._control, self.intent, first_venue)
            if kill is not None:  # remembered with the opening: a redelivery after a resume
                expired = True  # must not send what this delivery refused
                opened += self._refusal(0, self.plan.steps[0], kill, submitted=False)
            if self._openings is not None and self._record is not None:
                self._openings.remember(self.intent.id, opened, self._record)
            late = False  # decided just now: expired already says so
        else:
            first, last = decode_event(opened[0].value), decode_event(opened[-1].value)
            expired = first.topic == "intent.expired" or last.topic == "exec.failed"
            self._last_id = last.event_id
        for output in opened:
            await self._emit(output)
        if expired:
            return False
        if late:  # started on an earlier delivery, nothing sent, and now too late to send
            step = self.plan.steps[0]
            await self._out(
                "exec.step_failed",
                ExecStepFailed(
                    plan_id=self.plan.id,
                    step_id=step.step_id,
                    venue=step.venue,
                    reason=f"expired: the window closed at {deadline} before the step was sent",
                ),
                2,
            )
            await self._out(
                "intent.expired",
                IntentExpired(deadline_ms=deadline or 0, observed_at_ms=now, stage="execute"),
                3,
            )
            return False
        return True

    async def _submit(self, venue: Venue, step: ExecutionStep) -> Submission:
        deadline = self.intent.deadline_ms
        for delay in (*RETRY_DELAYS_S, None):
            try:
                return await venue.submit(step)
            except TransientVenueError as exc:
                if delay is None or (
                    deadline is not None and self._clock() + delay * 1000 > deadline
                ):
                    raise StepRejected(venue.name, "unavailable", str(exc)) from exc
                log.warning(
                    "transient venue error, retrying",
                    extra={"step": step.step_id, "error": str(exc)},
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _refusal(
        self, k: int, step: ExecutionStep, exc: VenueError, *, submitted: bool
    ) -> list[Output]:
        # StepRejected is definitive; a TransientVenueError that outlived the retries and the
        # receipt grace is reported as a failure of this step all the same.  A step refused
        # before it was sent has no exec.step_submitted, so its failure takes that seq.
        seq = 3 + 2 * k if submitted else 2 + 2 * k
        return [
            self._event(
                "exec.step_failed",
                ExecStepFailed(
                    plan_id=self.plan.id,
                    step_id=step.step_id,
                    venue=step.venue,
                    reason=_reason(exc),
                ),
                seq,
            ),
            self._event(
                "exec.failed",
                ExecFailed(plan_id=self.plan.id, reason=f"step {k + 1} failed: {exc.reason}"),
                seq + 1,
            ),
        ]

    async def _step_failed(
        self, k: int, step: ExecutionStep, venue: Venue, exc: VenueError, *, submitted: bool
    ) -> None:
        outputs = self._refusal(k, step, exc, submitted=submitted)
        for output in outputs:
            await self._emit(output)
        if exc.reason != KILLED:
            await self._outcome(step, ok=False, reason=_reason(exc))

    async def _outcome(self, step: ExecutionStep, *, ok: bool, reason: str) -> None:
        """Tell the venue's breaker (``pipeline.breakers.execution``) how the step went."""
        if self._breakers is None:
            return
        change = self._breakers.report(StepOutcome(step.venue, ok, reason, self._planned_ms))
        if change is not None:
            await self._emit(change)

    async def run(self) -> None:
        steps = self.plan.steps
        missing = sorted({step.venue for step in steps} - set(self._venues))
        if missing:
            # The venue was disabled or renamed while the plan was in flight: nothing was
            # sent from here and nothing can be, so the plan fails, saying why.
            await self._out(
                "exec.failed",
                ExecFailed(
                    plan_id=self.plan.id,
                    reason=(
                        f"unknown_venue: this worker has no venue {', '.join(map(repr, missing))} "
                        f"(it has {sorted(self._venues)})"
                    ),
                ),
                1,
            )
            return
        deadline = self.intent.deadline_ms
        already: Submission | None = None  # step 1's submission, if sent before a crash
        fills: list[Fill] = []
        for k, step in enumerate(steps):
            venue = self._venues[step.venue]
            # Lookup and submit are one critical section per step: two runs of one plan (a
            # re-emitted plan.created) must not both find nothing and both send.
            async with self._locks.hold(step.step_id):
                if k == 0:
                    already = await venue.lookup(step.step_id)
                    if not await self._open(already):
                        return
                try:
                    submission = already if k == 0 else await venue.lookup(step.step_id)
                    if submission is None:
                        # The last moment a kill switch can stop it (stages/killed.py).
                        if (
                            kill := killed_step(self._control, self.intent, venue.name)
                        ) is not None:
                            raise kill
                        submission = await self._submit(venue, step)
                except VenueError as exc:
                    await self._step_failed(k, step, venue, exc, submitted=False)
                    return
            try:
                await self._out(
                    "exec.step_submitted",
                    ExecStepSubmitted(
                        plan_id=self.plan.id,
                        step_id=step.step_id,
                        venue=venue.name,
                        order_ref=submission.order_ref,
                    ),
                    2 + 2 * k,
                )
                remaining_s = ((deadline - self._clock()) / 1000) if deadline else 0.0
                fill = await venue.wait_receipt(submission, max(remaining_s, 0) + RECEIPT_GRACE_S)
            except VenueError as exc:
                await self._step_failed(k, step, venue, exc, submitted=True)
                return
            fills.append(fill)
            await self._outcome(step, ok=True, reason=fill.order_ref)
            await self._out(
                "exec.step_filled",
                ExecStepFilled(
                    plan_id=self.plan.id,
                    step_id=step.step_id,
                    venue=venue.name,
                    order_ref=fill.order_ref,
                    asset_in=step.asset_in,
                    asset_out=step.asset_out,
                    amount_in=fill.amount_in,
                    amount_out=fill.amount_out,
                    landed_at=fill.landed_at,
                ),
                3 + 2 * k,
            )
        # The planner's steps are parallel paths of one trade (a split route), so the
        # intent's totals are the sums of the fills.
        await self._out(
            "exec.completed",
            ExecCompleted(
                plan_id=self.plan.id,
                asset_in=steps[0].asset_in,
                asset_out=steps[0].asset_out,
                amount_in=sum((f.amount_in for f in fills), Decimal(0)),
                amount_out=sum((f.amount_out for f in fills), Decimal(0)),
                realised_slippage=realised_slippage(steps, fills),
            ),
            2 + 2 * len(steps),
        )


class ExecuteStage:
    name = "execute"

    def __init__(self, context: StageContext) -> None:
        self._context = context
        self._topic = context.topology.stage(self.name).events_topic
        self._locks = StepLocks()
        self._openings = Decisions(
            context.table(
                EXECUTE_OPENINGS, "intent id -> exec.started or intent.expired, as first given"
            ),
            ttl_s=context.settings.decision_ttl_s,
        )
        outputs = context.topology.stage(self.name).outputs
        self._breakers = ExecutionBreakers(
            context.topology.breakers,
            context.control,
            CONTROL_TOPIC if CONTROL_TOPIC in outputs else None,
            context.clock,
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        pairs = [
            (record, event)
            for record in records
            if (event := event_of(record)).topic == "plan.created"
        ]
        # Plans of different intents run concurrently; one intent's events stay in order
        # because a PlanRun emits them one after another.  A plan re-emitted after a crash
        # can come twice in one batch: it runs once (and the step locks cover copies that
        # arrive in batches processed side by side).
        runs: dict[str, PlanRun] = {}
        for record, event in pairs:
            run = PlanRun(
                event,
                self._context.venues,
                self._context.clock,
                emit,
                self._locks,
                self._openings,
                record,
                topic=self._topic,
                control=self._context.control,
                breakers=self._breakers,
            )
            runs.setdefault(run.plan.id, run)
        await asyncio.gather(*(run.run() for run in runs.values()))
        self._openings.sweep()


def build(context: StageContext) -> ExecuteStage:
    return ExecuteStage(context)
