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
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from pipeline.breakers.execution import ExecutionBreakers, StepOutcome
from pipeline.codec import decode_event
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.control.state import ControlView
from pipeline.models.base import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    WireModel,
    built,
    wire_amount,
)
from pipeline.models.events import (
    Event,
    ExecCompleted,
    ExecFailed,
    ExecPayload,
    ExecStarted,
    ExecStepFailed,
    ExecStepFilled,
    ExecStepSubmitted,
    IntentExpired,
    PlanCreated,
    PlanRejected,
    make_event,
)
from pipeline.models.intent import PartialFills
from pipeline.models.plan import ExecutionStep, StepKind, SwapMode
from pipeline.plugins.venue import (
    Fill,
    StepRejected,
    Submission,
    TransientVenueError,
    Venue,
    VenueError,
)
from pipeline.priority.signals import StrategyOutcomes
from pipeline.stages.base import BookView, Emit, Output, Record, StageContext, event_of
from pipeline.stages.book_planning import plan_on_books
from pipeline.stages.decisions import Decisions
from pipeline.stages.killed import KILLED, killed_step
from pipeline.stages.table_names import EXECUTE_OPENINGS

log = logging.getLogger(__name__)
RECEIPT_GRACE_S = 30.0  # a sent step is final only when the venue says so, even past the window
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
REPLAN_WAIT_S = 2.0  # for the book feed to show the plan's own fills (a poll is ~50 ms)
REPLAN_POLL_S = 0.02
REPLAN_KEY_SUFFIX = "/replan"
"""The openings table's key for a plan's re-planned steps: ``<intent id>/replan``."""


_WHOLE_DIGITS = AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES


def _fits(amount: object) -> bool:
    """Whether an ``Amount`` field takes ``amount`` as it is (a finite ``Decimal`` with at
    most 36 decimal places and 42 whole digits: validation would return it unchanged)."""
    if type(amount) is not Decimal or not amount.is_finite():
        return False
    _, digits, exponent = amount.as_tuple()
    return isinstance(exponent, int) and (
        exponent >= -AMOUNT_DECIMAL_PLACES and len(digits) + exponent <= _WHOLE_DIGITS
    )


def _wanted(step: ExecutionStep) -> tuple[Decimal, str]:
    if step.mode is SwapMode.EXACT_OUT:
        return step.amount_out, step.asset_out
    return step.amount_in, step.asset_in


@dataclass
class _Done:
    fills: list[Fill] = field(default_factory=list)
    short: list[Shortfall] = field(default_factory=list)
    """Book children that filled less than asked."""
    landed: dict[str, int] = field(default_factory=dict)
    """Per book venue, the book version that includes every fill of the plan there."""


@dataclass(frozen=True)
class Shortfall:
    """A step that filled less than it asked: ``rest`` of ``asset`` not traded."""

    index: int
    step: ExecutionStep
    filled: Decimal
    wanted: Decimal
    asset: str
    why: str

    @property
    def rest(self) -> Decimal:
        return self.wanted - self.filled


def shortfall(k: int, step: ExecutionStep, fill: Fill | None, why: str = "") -> Shortfall | None:
    """How much of ``step`` its fill left undone (``None``: all of it was done).  Counted in
    the asset the step fixes: what it receives (EXACT_OUT) or spends (EXACT_IN)."""
    wanted, asset = _wanted(step)
    filled = (
        Decimal(0)
        if fill is None
        else (fill.amount_out if step.mode is SwapMode.EXACT_OUT else fill.amount_in)
    )
    if filled >= wanted:
        return None
    return Shortfall(
        k,
        step,
        filled,
        wanted,
        asset,
        why or "the book moved: its IOC found no more within its bounds",
    )


def shortfall_reason(shortfalls: Sequence[Shortfall], policy: PartialFills) -> str:
    """``exec.failed``'s reason for a plan whose children did not all fill."""
    parts = [
        f"step {s.index + 1} on {s.step.venue} filled {s.filled.normalize():f} of "
        f"{s.wanted.normalize():f} {s.asset} ({s.why})"
        for s in shortfalls
    ]
    rest: dict[str, Decimal] = {}
    for s in shortfalls:
        rest[s.asset] = rest.get(s.asset, Decimal(0)) + s.rest
    left = ", ".join(f"{amount.normalize():f} {asset}" for asset, amount in sorted(rest.items()))
    return (
        f"partial_fill: {'; '.join(parts)}; the rest ({left}) is not traded "
        f"(onPartialFill {policy.value})"
    )


def _reason(exc: VenueError) -> str:
    """A failed step's reason as ``exec.step_failed`` says it: ``code: detail``."""
    return f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason


def realised_slippage(steps: Sequence[ExecutionStep], fills: Sequence[Fill]) -> Decimal:
    """How much worse than quoted, over all the plan's steps: a fraction of the quote
    (negative means better)."""
    return _slippage(steps, *_totals(fills))


def _totals(fills: Sequence[Fill]) -> tuple[Decimal, Decimal]:
    """What the fills spent and received, in all (``sum(..., Decimal(0))``: the same
    additions in the same order, one loop for both)."""
    paid = got = Decimal(0)
    for fill in fills:
        paid += fill.amount_in
        got += fill.amount_out
    return paid, got


def _slippage(steps: Sequence[ExecutionStep], paid: Decimal, got: Decimal) -> Decimal:
    """``realised_slippage`` of fills that spent ``paid`` and received ``got`` in all."""
    quoted = Decimal(0)
    if steps[0].mode is SwapMode.EXACT_IN:
        for step in steps:
            quoted += step.amount_out
        ratio = (quoted - got) / quoted if quoted else None
    else:
        for step in steps:
            quoted += step.amount_in
        ratio = (paid - quoted) / quoted if quoted else None
    # A ratio can have any number of decimal places; the wire takes 36.
    return wire_amount(ratio) if ratio is not None else Decimal(0)


# ------------------------------------------------------------------ the payloads of a step
# Built, not validated (``pipeline.models.base.built``): what comes from the plan (validated
# when it was decoded or made) is taken as it is; what a venue hands over is checked here,
# and validated if the check fails.  Validating an exec payload's amounts again cost ~2 us a
# field, ~15 us an intent (issue 11).


def step_submitted(
    plan_id: str, step: ExecutionStep, venue: str, order_ref: str
) -> ExecStepSubmitted:
    asked, asked_asset = _wanted(step)
    fields = {
        "plan_id": plan_id,
        "step_id": step.step_id,
        "venue": venue,
        "order_ref": order_ref,
        "kind": step.kind,
        "limit_price": step.limit_price,
        "asked": asked,
        "asked_asset": asked_asset,
    }
    if type(venue) is str and type(order_ref) is str:
        return built(ExecStepSubmitted, **fields)
    return ExecStepSubmitted(**fields)


def step_filled(plan_id: str, step: ExecutionStep, venue: str, fill: Fill) -> ExecStepFilled:
    fields = {
        "plan_id": plan_id,
        "step_id": step.step_id,
        "venue": venue,
        "order_ref": fill.order_ref,
        "asset_in": step.asset_in,
        "asset_out": step.asset_out,
        "amount_in": fill.amount_in,
        "amount_out": fill.amount_out,
        "landed_at": fill.landed_at,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
    }
    if (
        type(venue) is str
        and type(fill.order_ref) is str
        and _fits(fill.amount_in)
        and _fits(fill.amount_out)
        and (fill.landed_at is None or type(fill.landed_at) is int)
        and (fill.fee is None or _fits(fill.fee))
        and (fill.fee_asset is None or type(fill.fee_asset) is str)
    ):
        return built(ExecStepFilled, **fields)
    return ExecStepFilled(**fields)


def completed(plan_id: str, steps: Sequence[ExecutionStep], fills: Sequence[Fill]) -> ExecCompleted:
    # The planner's steps are parallel paths of one trade (a split route), so the intent's
    # totals are the sums of the fills.
    paid, got = _totals(fills)
    slippage = _slippage(steps, paid, got)
    fields = {
        "plan_id": plan_id,
        "asset_in": steps[0].asset_in,
        "asset_out": steps[0].asset_out,
        "amount_in": paid,
        "amount_out": got,
        "realised_slippage": slippage,
    }
    if _fits(paid) and _fits(got) and _fits(slippage):
        return built(ExecCompleted, **fields)
    return ExecCompleted(**fields)


class StepLocks:
    """A lock per step id, dropped when no run holds or waits for it.

    A step is taken at once when no run holds it (no coroutine, no ``asyncio.Lock``: ~2 us
    of a step in ``lock.acquire`` and the context's ``__aenter__``/``__aexit__``); else the
    run waits its turn, first come first served, and ``release`` hands the step to it."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        """Per step held, the runs waiting for it, in order."""

    def __len__(self) -> int:
        return len(self._waiting)

    def hold(self, step_id: str) -> _Held:
        """``async with locks.hold(step_id):`` -- one run at a time in the block."""
        return _Held(self, step_id)

    def take(self, step_id: str) -> asyncio.Future[None] | None:
        """Take the step: ``None`` if taken now, else a turn to ``wait`` for (then it is
        taken); either way ``release`` it after."""
        waiting = self._waiting.get(step_id)
        if waiting is None:
            self._waiting[step_id] = deque()
            return None
        turn = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        return turn

    async def wait(self, step_id: str, turn: asyncio.Future[None]) -> None:
        """Wait for ``turn`` (from ``take``).  Cancelled while waiting, the run holds
        nothing: a turn handed over just before is passed on."""
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release(step_id)  # handed over, but the run will not use it
            raise

    def release(self, step_id: str) -> None:
        """Hand the step to the next run waiting (a cancelled one is skipped), or drop it."""
        waiting = self._waiting[step_id]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._waiting[step_id]


class _Held:
    """``StepLocks.hold``'s context."""

    __slots__ = ("_locks", "_step_id")

    def __init__(self, locks: StepLocks, step_id: str) -> None:
        self._locks = locks
        self._step_id = step_id

    async def __aenter__(self) -> None:
        turn = self._locks.take(self._step_id)
        if turn is not None:
            await self._locks.wait(self._step_id, turn)

    async def __aexit__(self, *exc_info: object) -> None:
        self._locks.release(self._step_id)


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
        books: BookView | None = None,
        control: ControlView | None = None,
        breakers: ExecutionBreakers | None = None,
        paper: bool = False,
        outcomes: StrategyOutcomes | None = None,
    ) -> None:
        payload = event.payload_as(PlanCreated)
        self.plan, self.intent = payload.plan, payload.intent
        self._deadline = self.intent.deadline_ms
        self._cause = event
        self._venues = venues
        self._books = books
        """The pair's books, to re-plan the rest of a child (``onPartialFill`` REPLAN)."""
        self._clock = clock
        self._send = emit
        self._outcomes = outcomes
        """Each strategy's completions and failures, for the priority model's fill rate."""
        self._locks = locks if locks is not None else StepLocks()
        self._openings = openings
        self._record = record
        self._last_id = event.event_id
        self._topic = topic
        self._control = control
        self._breakers = breakers
        self._planned_ms = int(event.timestamp.timestamp() * 1000)
        self._paper = paper

    def _event(self, topic: str, payload: WireModel, seq_offset: int) -> Output:
        if self._paper and isinstance(payload, ExecPayload):
            payload = payload.model_copy(update={"paper": True})  # says it traded on paper
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

    async def _emit(self, output: Output) -> None:
        await self._send(output)
        if output.event is not None:
            self._record_outcome(output.event.topic)

    async def _out(self, topic: str, payload: WireModel, seq_offset: int) -> None:
        """``_emit(_event(...))`` in one frame (four an intent)."""
        await self._send(self._event(topic, payload, seq_offset))
        self._record_outcome(topic)

    def _record_outcome(self, topic: str) -> None:
        """An intent's end, for the strategy's outcome signals (prioritise reads them)."""
        if self._outcomes is not None:
            if topic == "exec.completed":
                self._outcomes.record(self.intent.strategy_id, True)
            elif topic == "exec.failed":
                self._outcomes.record(self.intent.strategy_id, False)

    async def _open(self, already: Submission | None) -> bool:
        """The plan's first event: ``exec.started``, or ``intent.expired`` if the window closed
        before anything was sent; whether to go on.

        Which one is remembered (``openings``): a delivery after a crash between
        ``exec.started`` and the first send, past the deadline, must not say
        ``intent.expired`` under the seq ``exec.started`` already has.  It says started
        again, and that the step was not sent in time.
        """
        deadline, now = self._deadline, self._clock()
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

    async def _resubmit(
        self, venue: Venue, step: ExecutionStep, exc: TransientVenueError
    ) -> Submission:
        """After ``exc``: ``venue.submit`` again after each of ``RETRY_DELAYS_S`` while the
        window lasts; ``StepRejected`` (``unavailable``) when it is over or they are."""
        deadline = self._deadline
        for delay in RETRY_DELAYS_S:
            if deadline is not None and self._clock() + delay * 1000 > deadline:
                break
            log.warning(
                "transient venue error, retrying",
                extra={"step": step.step_id, "error": str(exc)},
            )
            await asyncio.sleep(delay)
            try:
                return await venue.submit(step)
            except TransientVenueError as again:
                exc = again
        raise StepRejected(venue.name, "unavailable", str(exc)) from exc

    def _failure(self, step: ExecutionStep, exc: VenueError) -> ExecStepFailed:
        return ExecStepFailed(
            plan_id=self.plan.id,
            step_id=step.step_id,
            venue=step.venue,
            reason=_reason(exc),
        )

    def _refusal(
        self, k: int, step: ExecutionStep, exc: VenueError, *, submitted: bool
    ) -> list[Output]:
        # StepRejected is definitive; a TransientVenueError that outlived the retries and the
        # receipt grace is reported as a failure of this step all the same.  A step refused
        # before it was sent has no exec.step_submitted, so its failure takes that seq.
        seq = 3 + 2 * k if submitted else 2 + 2 * k
        return [
            self._event("exec.step_failed", self._failure(step, exc), seq),
            self._event(
                "exec.failed",
                ExecFailed(plan_id=self.plan.id, reason=f"step {k + 1} failed: {exc.reason}"),
                seq + 1,
            ),
        ]

    async def _step_failed(
        self, k: int, step: ExecutionStep, exc: VenueError, *, submitted: bool
    ) -> None:
        for output in self._refusal(k, step, exc, submitted=submitted):
            await self._emit(output)
        if exc.reason != KILLED:
            await self._outcome(step, ok=False, reason=_reason(exc))

    async def _outcome(self, step: ExecutionStep, *, ok: bool, reason: str) -> None:
        """Tell the venue's breaker (``pipeline.breakers.execution``) how the step went."""
        if (change := self._breaker_change(step, ok=ok, reason=reason)) is not None:
            await self._emit(change)

    def _breaker_change(self, step: ExecutionStep, *, ok: bool, reason: str) -> Output | None:
        """``_outcome``'s report, and the breaker change to emit if it made one (called as
        it is where steps fill: no coroutine a step for a change that seldom comes)."""
        if self._breakers is None:
            return None
        return self._breakers.report(StepOutcome(step.venue, ok, reason, self._planned_ms))

    async def run(self) -> None:
        steps, venues = self.plan.steps, self._venues
        if missing := sorted({step.venue for step in steps if step.venue not in venues}):
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
        done = _Done()
        for k, step in enumerate(steps):
            if not await self._run_step(k, step, done):
                return
        count = len(steps)
        policy = self.intent.constraints.on_partial_fill or PartialFills.FAIL
        if done.short and policy is PartialFills.REPLAN:
            # One round: the rest planned again on the books as they are now, executed as
            # further steps (ids ``<plan id>-r<j>``, looked up before placing like any step).
            replanned, why = await self._replan_once(done.short, done.landed)
            if replanned:
                done.short = []
                for j, step in enumerate(replanned):
                    if not await self._run_step(count + j, step, done):
                        return
                count += len(replanned)
            else:
                done.short = [replace(s, why=f"{s.why}; not re-planned: {why}") for s in done.short]
        if done.short:
            # The fills stand (each is in its venue's ledger and in exec.step_filled); the
            # rest is failed with the reason, as the intent's ``onPartialFill`` says.
            await self._out(
                "exec.failed",
                ExecFailed(plan_id=self.plan.id, reason=shortfall_reason(done.short, policy)),
                2 + 2 * count,
            )
            return
        await self._out("exec.completed", completed(self.plan.id, steps, done.fills), 2 + 2 * count)

    async def _run_step(self, k: int, step: ExecutionStep, done: _Done) -> bool:
        """Send step ``k`` (once: looked up first) and report it; whether to go on.

        A book child that filled less than asked (or nothing: ``unfilled``) is recorded in
        ``done.short`` and the plan goes on: its children are parts of one trade."""
        venue = self._venues.get(step.venue)
        if venue is None:  # a re-planned step on a venue this worker lacks
            exc = StepRejected(step.venue, "unknown_venue", f"this worker has no {step.venue}")
            await self._step_failed(k, step, exc, submitted=False)
            return False
        # Lookup and submit are one critical section per step: two runs of one plan (a
        # re-emitted plan.created) must not both find nothing and both send.
        locks, step_id = self._locks, step.step_id
        turn = locks.take(step_id)
        if turn is not None:
            await locks.wait(step_id, turn)  # raises holding nothing
        try:
            already = await venue.lookup(step_id)
            if k == 0 and not await self._open(already):
                return False
            try:
                # The last moment a kill switch can stop it (stages/killed.py).
                kill = None if already else killed_step(self._control, self.intent, venue.name)
                if kill is not None:
                    raise kill
                if already is not None:
                    submission = already
                else:
                    try:
                        submission = await venue.submit(step)
                    except TransientVenueError as exc:
                        submission = await self._resubmit(venue, step, exc)
            except VenueError as exc:
                await self._step_failed(k, step, exc, submitted=False)
                return False
        finally:
            locks.release(step_id)
        deadline = self._deadline
        try:
            await self._out(
                "exec.step_submitted",
                step_submitted(self.plan.id, step, venue.name, submission.order_ref),
                2 + 2 * k,
            )
            remaining_s = ((deadline - self._clock()) / 1000) if deadline else 0.0
            fill = await venue.wait_receipt(submission, max(remaining_s, 0) + RECEIPT_GRACE_S)
        except StepRejected as exc:
            if step.kind is StepKind.ORDER and exc.reason == "unfilled":
                await self._out("exec.step_failed", self._failure(step, exc), 3 + 2 * k)
                done.short.append(Shortfall(k, step, Decimal(0), *_wanted(step), exc.detail))
                return True
            await self._step_failed(k, step, exc, submitted=True)
            return False
        except VenueError as exc:
            await self._step_failed(k, step, exc, submitted=True)
            return False
        done.fills.append(fill)
        if (change := self._breaker_change(step, ok=True, reason=fill.order_ref)) is not None:
            await self._emit(change)
        if step.kind is StepKind.ORDER:
            if (part := shortfall(k, step, fill)) is not None:
                done.short.append(part)
            if fill.landed_at is not None:
                done.landed[venue.name] = max(done.landed.get(venue.name, 0), fill.landed_at)
        await self._out(
            "exec.step_filled", step_filled(self.plan.id, step, venue.name, fill), 3 + 2 * k
        )
        return True

    async def _replan_once(
        self, short: Sequence[Shortfall], landed: Mapping[str, int]
    ) -> tuple[list[ExecutionStep], str]:
        """``_replan``'s answer, remembered with the plan's opening (``openings``) before any
        re-planned step is placed: a redelivered plan re-plans on books that have moved since
        (by this plan's own re-planned fills, for one), and must not choose other steps -- an
        order on another venue, under an id already placed elsewhere, would be sent again."""
        key = f"{self.intent.id}{REPLAN_KEY_SUFFIX}"
        known = self._openings.recall(key) if self._openings is not None else None
        if known is not None:
            steps = [ExecutionStep.model_validate_json(o.value) for o in known if o.topic == "step"]
            return steps, "".join(o.value.decode() for o in known if o.topic == "refused")
        steps, why = await self._replan(short, landed)
        if self._openings is not None and self._record is not None:
            remembered = [
                Output("step", b"", s.model_dump_json(by_alias=True).encode()) for s in steps
            ]
            if not steps:
                remembered.append(Output("refused", b"", why.encode()))
            self._openings.remember(key, remembered, self._record)
        return steps, why

    async def _replan(
        self, short: Sequence[Shortfall], landed: Mapping[str, int]
    ) -> tuple[list[ExecutionStep], str]:
        """The rest of the short children planned on the pair's books now: the steps, or
        none and why not.

        The books are read once they include this plan's own fills (``landed``: per venue,
        the book version of its last fill), so the rest is not planned on the levels the
        children just took; after ``REPLAN_WAIT_S`` the books are taken as they are."""
        intent, books = self.intent, self._books
        subject = intent.subject
        if books is None:
            return [], "this worker follows no books"
        if any(s.asset != subject.asset.symbol for s in short):
            return [], f"the rest is not in {subject.asset.symbol}"
        rest = sum((s.rest for s in short), Decimal(0))
        pair = (subject.asset.symbol, intent.counter.asset.symbol)
        deadline = time.monotonic() + REPLAN_WAIT_S
        while True:
            book = books.book(*pair)
            behind = book is None or any(
                v in book.venues and book.venues[v].seq < seq for v, seq in landed.items()
            )
            if not behind or time.monotonic() >= deadline:
                break
            await asyncio.sleep(REPLAN_POLL_S)
        if book is None:
            return [], "the pair's books are not in sync"
        again = intent.model_copy(
            update={"assets": (subject.model_copy(update={"amount": rest}), intent.counter)}
        )
        planned = plan_on_books(again, 0, book)
        if isinstance(planned, PlanRejected):
            return [], f"{planned.reason}: {planned.detail}"
        return [
            step.model_copy(update={"step_id": f"{self.plan.id}-r{j + 1}"})
            for j, step in enumerate(planned.plan.steps)
        ], ""


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
        context = self._context
        paper = context.topology.app.mode == "paper"
        for record, event in pairs:
            run = PlanRun(
                event,
                context.venues,
                context.clock,
                emit,
                self._locks,
                self._openings,
                record,
                topic=self._topic,
                books=context.books,
                control=context.control,
                breakers=self._breakers,
                paper=paper,
                outcomes=context.outcomes,
            )
            runs.setdefault(run.plan.id, run)
        await asyncio.gather(*(run.run() for run in runs.values()))
        self._openings.sweep()


def build(context: StageContext) -> ExecuteStage:
    return ExecuteStage(context)
