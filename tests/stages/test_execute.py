"""Execute: each plan through the real sim venue (a SQLite ledger in tmp_path), exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.models.events import (
    Event,
    ExecCompleted,
    ExecStepFailed,
    ExecStepFilled,
    ExecStepSubmitted,
    IntentExpired,
    PlanCreated,
)
from pipeline.models.plan import ExecutionStep
from pipeline.plugins.manager import build_venues
from pipeline.plugins.venue import Fill, Submission, TransientVenueError, Venue
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.execute import (
    ExecuteStage,
    StepLocks,
    build,
    completed,
    realised_slippage,
    step_filled,
    step_submitted,
)
from pipeline.stages.ingest import ingest_record
from pipeline.stages.plan import plan_output
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from plugins.sim_venue import SimVenue

TOPOLOGY = load_topology()
INGESTED = TOPOLOGY.stage("ingest").events_topic
OUTPUT_TOPIC = TOPOLOGY.stage("execute").events_topic
T0 = 1_700_000_000_000  # record timestamp = the intent's creation time
WINDOW = 300_000
DURING = T0 + 1_000  # a clock inside the window


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimVenue]:
    venues = build_venues(TOPOLOGY, tmp_path)
    venue = venues["sim"]
    assert isinstance(venue, SimVenue)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.stop()


async def plan_event(
    venue: Venue,
    amount: str = "1",
    *,
    slippage: str = "0.01",
    kind: str = "DISPOSE",
    subject: str = "WETH",
    counter: str = "USDC",
    offset: int = 0,
) -> Event:
    """The plan.created event the real stages make of one submission, on the venue's pools."""
    data = submission(
        TOPOLOGY,
        kind,
        subject,
        counter,
        amount,
        max_slippage=slippage,
        time_window_ms=WINDOW,
        client_intent_id=f"c-{offset}",
    )
    rec = Record("sep.intents.submitted", 0, offset, T0, b"demo", orjson.dumps(data))
    sub = decode_event(ingest_record(rec, MemoryTable(), T0, topic=INGESTED).outputs[0].value)
    _, accepted = (decode_event(o.value) for o in validate_event(sub, TOPOLOGY, ("sim",), T0))
    prioritised = decode_event(prioritise_event(accepted, TOPOLOGY, T0)[1].value)
    event = decode_event(
        plan_output(prioritised, {venue.name: await venue.pools()}, TOPOLOGY, T0).value
    )
    assert event.topic == "plan.created", event.payload
    assert event.seq == 5
    return event


async def execute(
    venues: dict[str, Venue],
    events: list[Event],
    clock: Callable[[], int] = lambda: DURING,
    table: MemoryTable | None = None,
) -> list[Event]:
    """``events`` through a new execute stage; ``table``: its state, as recovered from the
    changelog by the worker that gets the partition next (none: a fresh one)."""
    context = StageContext(TOPOLOGY, Settings(), venues=venues, clock=clock)
    if table is not None:
        context.table = lambda name, help: table
    stage = build(context)
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        assert output.topic == OUTPUT_TOPIC
        sent.append(output)

    records = [Record("sep.plans", 0, i, T0, None, encode_event(e)) for i, e in enumerate(events)]
    await stage.process(records, emit)
    for output in sent:
        assert output.key == decode_event(output.value).correlation_id.encode()
    return [decode_event(o.value) for o in sent]


def step_of(event: Event) -> ExecutionStep:
    payload = event.parse_payload()
    assert isinstance(payload, PlanCreated)
    return payload.plan.steps[0]


# ----------------------------------------------------------------------------- happy path


async def test_plan_is_started_submitted_filled_completed(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    out = await execute({"sim": sim}, [plan])
    assert [(e.topic, e.seq) for e in out] == [
        ("exec.started", 6),
        ("exec.step_submitted", 7),
        ("exec.step_filled", 8),
        ("exec.completed", 9),
    ]
    assert {e.correlation_id for e in out} == {plan.correlation_id}
    # Each event is caused by the one before it; the first by the plan.
    assert [e.causation_id for e in out] == [plan.event_id] + [e.event_id for e in out[:-1]]

    step = step_of(plan)
    assert out[0].payload == {"planId": plan.payload["plan"]["id"], "steps": 1}
    submitted = out[1].payload
    assert (submitted["stepId"], submitted["venue"]) == (step.step_id, "sim")
    filled = out[2].parse_payload()
    assert isinstance(filled, ExecStepFilled)
    assert filled.order_ref == submitted["orderRef"]
    # Nothing traded between planning and execution, so the fill is the quote exactly.
    assert (filled.amount_in, filled.amount_out) == (step.amount_in, step.amount_out)
    # Where it landed, for the planner: the pool's state now has that version.
    (leg,) = step.legs
    assert filled.landed_at == 1
    assert {p.pool_id: p.version for p in await sim.pools()}[leg.pool_id] == 1
    done = out[3].parse_payload()
    assert isinstance(done, ExecCompleted)
    assert (done.asset_in, done.asset_out) == ("WETH", "USDC")
    assert (done.amount_in, done.amount_out) == (Decimal("1"), step.amount_out)
    assert done.realised_slippage == 0
    assert sim.fill_counts() == {step.step_id: 1}


async def test_fill_moves_the_pool_by_exactly_the_fill(sim: SimVenue) -> None:
    before = {p.pool_id: p for p in await sim.pools()}
    plan = await plan_event(sim, "2")
    out = await execute({"sim": sim}, [plan])
    step = step_of(plan)
    (leg,) = step.legs
    after = {p.pool_id: p for p in await sim.pools()}
    weth_in = 2 * 10**18
    usdc_out = int(out[2].parse_payload().amount_out * 10**6)  # type: ignore[attr-defined]
    assert after[leg.pool_id].reserve0 == before[leg.pool_id].reserve0 + weth_in
    assert after[leg.pool_id].reserve1 == before[leg.pool_id].reserve1 - usdc_out
    untouched = [p for p in before if p != leg.pool_id]
    assert all(after[p] == before[p] for p in untouched)


async def test_acquire_plan_executes_exact_out(sim: SimVenue) -> None:
    plan = await plan_event(sim, "0.5", kind="ACQUIRE")
    out = await execute({"sim": sim}, [plan])
    assert out[-1].topic == "exec.completed"
    done = out[-1].parse_payload()
    assert isinstance(done, ExecCompleted)
    step = step_of(plan)
    assert done.amount_out >= Decimal("0.5")  # at least what was wanted
    assert done.amount_in <= step.max_in


# ----------------------------------------------------------------------------- exactly once


async def test_redelivered_plan_is_not_executed_twice(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    first = await execute({"sim": sim}, [plan])
    again = await execute({"sim": sim}, [plan], clock=lambda: DURING + 5_000)
    step = step_of(plan)
    assert sim.fill_counts() == {step.step_id: 1}
    assert sim.total_fills() == 1
    # The same facts, so the same event ids (the store absorbs them), same order reference.
    assert [e.event_id for e in again] == [e.event_id for e in first]
    assert [(e.topic, e.seq) for e in again] == [(e.topic, e.seq) for e in first]
    assert again[1].payload["orderRef"] == first[1].payload["orderRef"]
    assert again[2].payload == first[2].payload


async def test_redelivery_after_the_deadline_still_reports_the_sent_step(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    first = await execute({"sim": sim}, [plan])
    late = await execute({"sim": sim}, [plan], clock=lambda: T0 + WINDOW + 60_000)
    # The step was already sent: its outcome is reported, not an expiry.
    assert [e.event_id for e in late] == [e.event_id for e in first]
    assert sim.total_fills() == 1


class YieldingVenue:
    """The sim venue behind a network-like ``submit`` that yields before it reaches the venue.

    Real venues await I/O inside ``submit``; the sim venue's SQLite call does not suspend.
    """

    def __init__(self, inner: SimVenue, transient_failures: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self.transient_failures = transient_failures
        self.submits = 0

    async def lookup(self, step_id: str) -> Submission | None:
        return await self.inner.lookup(step_id)

    async def submit(self, step: ExecutionStep) -> Submission:
        self.submits += 1
        await asyncio.sleep(0)
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise TransientVenueError(self.name, "timeout", "connection reset")
        return await self.inner.submit(step)

    async def wait_receipt(self, submission: Submission, timeout_s: float) -> Fill:
        return await self.inner.wait_receipt(submission, timeout_s)


async def test_duplicate_plan_in_one_batch_is_executed_once(sim: SimVenue) -> None:
    # The plan stage re-emits an identical plan.created after a crash, and both copies can
    # land in one execute batch.  The batch runs plans concurrently; two runs of one plan
    # must not both send the step.
    plan = await plan_event(sim)
    venue = YieldingVenue(sim)
    out = await execute({"sim": venue}, [plan, plan])  # type: ignore[dict-item]
    assert sim.fill_counts() == {step_of(plan).step_id: 1}
    assert venue.submits == 1
    assert {e.topic for e in out} >= {"exec.completed"}


async def test_transient_error_is_retried(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    venue = YieldingVenue(sim, transient_failures=1)
    out = await execute({"sim": venue}, [plan])  # type: ignore[dict-item]
    assert [e.topic for e in out][-1] == "exec.completed"
    assert venue.submits == 2
    assert sim.total_fills() == 1


async def test_transient_error_past_the_window_fails_the_step(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    venue = YieldingVenue(sim, transient_failures=10)
    # 10 ms before the deadline: no time for even the first retry delay (50 ms).
    out = await execute(
        {"sim": venue},
        [plan],  # type: ignore[dict-item]
        clock=lambda: T0 + WINDOW - 10,
    )
    # Nothing was sent, so no exec.step_submitted: the failure follows exec.started directly
    # and the intent's seqs stay contiguous.
    assert [(e.topic, e.seq) for e in out] == [
        ("exec.started", 6),
        ("exec.step_failed", 7),
        ("exec.failed", 8),
    ]
    failed = out[1].parse_payload()
    assert isinstance(failed, ExecStepFailed)
    assert failed.reason.startswith("unavailable")
    assert venue.submits == 1
    assert sim.total_fills() == 0


# ----------------------------------------------------------------------------- refusals


async def test_expired_intent_sends_nothing(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    deadline = T0 + WINDOW
    out = await execute({"sim": sim}, [plan], clock=lambda: deadline + 1)
    assert [(e.topic, e.seq) for e in out] == [("intent.expired", 6)]
    assert out[0].causation_id == plan.event_id
    expired = out[0].parse_payload()
    assert isinstance(expired, IntentExpired)
    assert (expired.deadline_ms, expired.observed_at_ms, expired.stage) == (
        deadline,
        deadline + 1,
        "execute",
    )
    assert await sim.lookup(step_of(plan).step_id) is None
    assert sim.total_fills() == 0


async def test_at_the_deadline_is_still_in_time(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    out = await execute({"sim": sim}, [plan], clock=lambda: T0 + WINDOW)
    assert out[-1].topic == "exec.completed"


async def test_unmet_min_out_fails_the_step_and_the_plan(sim: SimVenue) -> None:
    # Two intents planned on the same pools; the big one executes first and moves the price
    # ~2 %, so the small one's 0.1 % floor can no longer be met.
    small = await plan_event(sim, "1", slippage="0.001", offset=1)
    big = await plan_event(sim, "200", slippage="0.05", offset=2)
    assert step_of(small).legs[0].pool_id == step_of(big).legs[0].pool_id
    assert (await execute({"sim": sim}, [big]))[-1].topic == "exec.completed"

    out = await execute({"sim": sim}, [small])
    assert [(e.topic, e.seq) for e in out] == [
        ("exec.started", 6),
        ("exec.step_submitted", 7),
        ("exec.step_failed", 8),
        ("exec.failed", 9),
    ]
    failed = out[2].parse_payload()
    assert isinstance(failed, ExecStepFailed)
    assert failed.reason.startswith("slippage")
    assert failed.step_id == step_of(small).step_id
    assert out[3].payload["reason"] == "step 1 failed: slippage"
    assert sim.fill_counts() == {step_of(big).step_id: 1}
    # Reprocessing the failed plan does not try again: same events, still no fill.
    again = await execute({"sim": sim}, [small])
    assert [e.event_id for e in again] == [e.event_id for e in out]
    assert sim.fill_counts() == {step_of(big).step_id: 1}


async def test_plan_for_a_venue_this_worker_lacks_fails_the_plan(sim: SimVenue) -> None:
    # The venue was disabled (or renamed) in the topology while the plan was in flight.
    # The intent must end with a terminal event that says why, not a KeyError that leaves
    # it "planned" for ever.
    plan = await plan_event(sim)
    out = await execute({}, [plan])
    assert out[-1].topic == "exec.failed"
    assert "sim" in str(out[-1].payload["reason"])
    assert sim.total_fills() == 0
    # Nothing was started: the failure is the plan's one outcome, caused by the plan.
    assert [(e.topic, e.seq) for e in out] == [("exec.failed", plan.seq + 1)]
    assert out[0].causation_id == plan.event_id
    assert str(out[0].payload["reason"]).startswith("unknown_venue")


async def test_step_locks_are_dropped_once_released() -> None:
    locks = StepLocks()
    order: list[str] = []

    async def hold(name: str) -> None:
        async with locks.hold("step-1"):
            order.append(f"{name} in")
            await asyncio.sleep(0)
            order.append(f"{name} out")

    await asyncio.gather(hold("a"), hold("b"))
    assert order == ["a in", "a out", "b in", "b out"]  # one at a time
    assert len(locks) == 0


async def test_a_run_cancelled_while_waiting_for_a_step_lock_leaves_nothing_held() -> None:
    locks = StepLocks()
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("step-1"):
            inside.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("step-1"):
            raise AssertionError("never entered: cancelled while waiting")

    first = asyncio.ensure_future(holder())
    await inside.wait()
    second = asyncio.ensure_future(waiter())
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    release.set()
    await first
    assert len(locks) == 0


async def test_a_step_handed_to_a_run_cancelled_before_it_resumed_goes_to_the_next() -> None:
    locks = StepLocks()
    order: list[str] = []
    assert locks.take("step-1") is None  # held here
    handed = locks.take("step-1")
    assert handed is not None

    async def first() -> None:
        await locks.wait("step-1", handed)
        order.append("first")  # never: cancelled once the step was handed to it
        locks.release("step-1")

    async def second() -> None:
        async with locks.hold("step-1"):
            order.append("second")

    waiting = asyncio.ensure_future(first())
    after = asyncio.ensure_future(second())
    await asyncio.sleep(0)
    locks.release("step-1")  # to the first waiter...
    waiting.cancel()  # ...cancelled before it resumed: it passes the step on
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await after
    assert order == ["second"]
    assert len(locks) == 0


def test_realised_slippage_fits_the_wire() -> None:
    # One base unit worse on a large quote is a ratio with ~50 decimal places; an Amount takes
    # 36, and a model that refuses it would fail the completed plan after the fill.
    step = ExecutionStep.model_validate(
        {
            "stepId": "s",
            "venue": "sim",
            "mode": "EXACT_IN",
            "legs": [
                {
                    "poolId": "p",
                    "venue": "sim",
                    "tokenIn": "A",
                    "tokenOut": "B",
                    "amountIn": 1,
                    "amountOut": 1,
                }
            ],
            "assetIn": "A",
            "assetOut": "B",
            "amountIn": "1",
            "minOut": "1",
            "amountOut": "3000000.000000000000000001",
            "maxIn": "1",
        }
    )
    ratio = realised_slippage([step], [Fill("s", "r", Decimal(1), Decimal("3000000"))])
    assert ratio == Decimal("0.000000000000000000000000333333333333")  # 36 places
    assert (
        ExecCompleted(
            plan_id="p",
            asset_in="A",
            asset_out="B",
            amount_in=Decimal(1),
            amount_out=Decimal(1),
            realised_slippage=ratio,
        ).realised_slippage
        == ratio
    )


def _same_as_validated(built: Any, validated: Any) -> None:
    """A payload built without validation is the object validation makes, field for field
    and in the same order (the serializer writes ``__dict__`` in its order)."""
    assert type(built) is type(validated)
    assert list(built.__dict__.items()) == list(validated.__dict__.items())
    assert built.model_fields_set == validated.model_fields_set
    assert (built.__pydantic_extra__, built.__pydantic_private__) == (None, None)
    assert built.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
    assert built.to_wire() == validated.to_wire()


def _outcome(make: Callable[[], Any]) -> Any:
    """What ``make()`` gives: the payload, or the errors validation raised."""
    try:
        return make()
    except ValidationError as exc:
        return exc.errors(include_input=False)


def _same_outcome(built: Callable[[], Any], validated: Callable[[], Any]) -> None:
    got, expected = _outcome(built), _outcome(validated)
    if isinstance(expected, list):  # refused: refused the same way
        assert got == expected
    else:
        _same_as_validated(got, expected)


ODD_FILLS = [
    Fill("s", "r", Decimal("1.5"), Decimal("4500.000001"), landed_at=7),
    Fill("s", "r", Decimal("2"), Decimal("3"), fee=Decimal("0.01"), fee_asset="USDC"),
    # Not what an Amount keeps as it is: validation rounds, refuses or converts, as before.
    Fill("s", "r", Decimal("1E-40"), Decimal("1.000000000000000000000000000000000000000")),
    Fill("s", "r", Decimal("1E+50"), Decimal(1)),
    Fill("s", "r", Decimal("NaN"), Decimal(1)),
    Fill("s", "r", 3, Decimal(1)),  # type: ignore[arg-type]  # a venue's mistake
    Fill("s", "r", Decimal(1), Decimal(1), landed_at=True),
    Fill("s", 12, Decimal(1), Decimal(1)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("fill", ODD_FILLS)
async def test_payloads_built_without_validation_are_the_validated_ones(
    sim: SimVenue, fill: Fill
) -> None:
    step = step_of(await plan_event(sim))
    wanted = step.amount_in
    _same_as_validated(
        step_submitted("p", step, "sim", "ref"),
        ExecStepSubmitted(
            plan_id="p",
            step_id=step.step_id,
            venue="sim",
            order_ref="ref",
            kind=step.kind,
            limit_price=step.limit_price,
            asked=wanted,
            asked_asset=step.asset_in,
        ),
    )
    filled: dict[str, Any] = {
        "plan_id": "p",
        "step_id": step.step_id,
        "venue": "sim",
        "order_ref": fill.order_ref,
        "asset_in": step.asset_in,
        "asset_out": step.asset_out,
        "amount_in": fill.amount_in,
        "amount_out": fill.amount_out,
        "landed_at": fill.landed_at,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
    }
    _same_outcome(lambda: step_filled("p", step, "sim", fill), lambda: ExecStepFilled(**filled))
    totals: dict[str, Any] = {
        "plan_id": "p",
        "asset_in": step.asset_in,
        "asset_out": step.asset_out,
        "amount_in": sum((fill.amount_in, fill.amount_in), Decimal(0)),
        "amount_out": sum((fill.amount_out, fill.amount_out), Decimal(0)),
        "realised_slippage": realised_slippage([step, step], [fill, fill]),
    }
    _same_outcome(
        lambda: completed("p", [step, step], [fill, fill]), lambda: ExecCompleted(**totals)
    )


async def test_other_events_are_ignored(sim: SimVenue) -> None:
    plan = await plan_event(sim)
    rejected = plan.model_copy(
        update={"topic": "plan.rejected", "payload": {"reason": "no_route", "detail": "x"}}
    )
    assert await execute({"sim": sim}, [rejected]) == []
    assert sim.total_fills() == 0


async def test_plans_of_different_intents_in_one_batch(sim: SimVenue) -> None:
    plans = [await plan_event(sim, "0.1", offset=i) for i in range(3)]
    out = await execute({"sim": sim}, plans)
    by_intent: dict[str, list[Any]] = {}
    for e in out:
        by_intent.setdefault(e.correlation_id, []).append(e.seq)
    # Each intent's events are complete and in order, whatever the interleaving.
    assert by_intent == {p.correlation_id: [6, 7, 8, 9] for p in plans}
    assert sim.total_fills() == 3


# ----------------------------------------------------------------------------- pure helpers


def test_realised_slippage() -> None:
    step = ExecutionStep.model_validate(
        {
            "stepId": "s",
            "venue": "sim",
            "mode": "EXACT_IN",
            "legs": [
                {
                    "poolId": "p",
                    "venue": "sim",
                    "tokenIn": "A",
                    "tokenOut": "B",
                    "amountIn": 1,
                    "amountOut": 1,
                }
            ],
            "assetIn": "A",
            "assetOut": "B",
            "amountIn": "1",
            "minOut": "90",
            "amountOut": "100",
            "maxIn": "1",
        }
    )
    assert realised_slippage([step], [Fill("s", "r", Decimal(1), Decimal(98))]) == (Decimal("0.02"))
    assert realised_slippage([step], [Fill("s", "r", Decimal(1), Decimal(101))]) == (
        Decimal("-0.01")
    )
    exact_out = step.model_copy(update={"mode": "EXACT_OUT", "amount_in": Decimal(50)})
    assert realised_slippage([exact_out], [Fill("s", "r", Decimal(51), Decimal(100))]) == (
        Decimal("0.02")
    )
    # A split route: quoted 100 + 300 out, received 99 + 297: 1 % worse over the whole trade.
    other = step.model_copy(update={"step_id": "t", "amount_out": Decimal(300)})
    fills = [Fill("s", "r", Decimal(1), Decimal(99)), Fill("t", "q", Decimal(1), Decimal(297))]
    assert realised_slippage([step, other], fills) == Decimal("0.01")


def test_stage_is_built_from_the_context() -> None:
    assert isinstance(build(StageContext(TOPOLOGY, Settings())), ExecuteStage)


class CrashingVenue(YieldingVenue):
    """Dies (not a venue error: the worker itself) as it is about to send."""

    async def submit(self, step: ExecutionStep) -> Submission:
        raise RuntimeError("worker killed")


async def test_a_crash_after_started_then_a_late_redelivery_keeps_started_and_sends_nothing(
    sim: SimVenue,
) -> None:
    plan = await plan_event(sim)
    table = MemoryTable()
    sent: list[Event] = []
    context = StageContext(
        TOPOLOGY,
        Settings(),
        venues={"sim": CrashingVenue(sim)},  # type: ignore[dict-item]
        clock=lambda: DURING,
    )
    context.table = lambda name, help: table
    stage = build(context)

    async def emit(output: Output) -> None:
        sent.append(decode_event(output.value))

    with pytest.raises(RuntimeError, match="worker killed"):
        await stage.process([Record("sep.plans", 0, 0, T0, None, encode_event(plan))], emit)
    assert [(e.topic, e.seq) for e in sent] == [("exec.started", 6)]

    # Redelivered past the deadline, to a worker that recovered the stage's table.
    late = await execute({"sim": sim}, [plan], clock=lambda: T0 + WINDOW + 1, table=table)
    assert [(e.topic, e.seq) for e in late] == [
        ("exec.started", 6),
        ("exec.step_failed", 7),
        ("intent.expired", 8),
    ]
    assert late[0].event_id == sent[0].event_id
    failed = late[1].parse_payload()
    assert isinstance(failed, ExecStepFailed)
    assert failed.reason.startswith("expired")
    assert sim.total_fills() == 0
    assert await sim.lookup(step_of(plan).step_id) is None
