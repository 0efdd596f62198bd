"""The kill switch in each stage (``pipeline/stages/killed.py``), in memory, on the real sim
venue: validate refuses new intents, plan makes no new plans, execute sends nothing new and
lets what was sent land; a strategy's switch leaves the others trading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.control.keys import kill_key, strategy_scope
from pipeline.control.publish import control_event
from pipeline.control.state import ControlState
from pipeline.models.control import KillSwitchChanged
from pipeline.models.events import Event, ExecStepFailed, IntentPrioritised, PlanCreated
from pipeline.models.market import PoolState
from pipeline.plugins.manager import build_venues
from pipeline.runtime.delivery.memory import build_memory_runtime
from pipeline.samples import submission
from pipeline.stages import execute as execute_stage
from pipeline.stages import plan as plan_stage
from pipeline.stages.base import MemoryTable, Output, Record, StageContext, StageProcessor
from pipeline.stages.ingest import ingest_record
from pipeline.stages.killed import killed_plan
from pipeline.stages.plan import plan_output
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from pipeline.topology.models import PluginUse, Topology
from plugins.sim_venue import SimVenue

T0 = 1_700_000_000_000
DURING = T0 + 1_000


def sim_only() -> Topology:
    topology = load_topology()
    venues = dict(topology.plugins.venues)
    venues["uniswap_v3"] = PluginUse(enabled=False)  # no chain in a unit test
    return topology.model_copy(
        update={"plugins": topology.plugins.model_copy(update={"venues": venues})}
    )


TOPOLOGY = sim_only()


def switch(scope: str, engaged: bool, seq: int = 1) -> Event:
    return control_event(
        kill_key(scope),
        "control.killed" if engaged else "control.resumed",
        KillSwitchChanged(scope=scope, actor="alice", reason="drill 7"),
        seq,
        T0,
    )


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimVenue]:
    venue = build_venues(TOPOLOGY, tmp_path)["sim"]
    assert isinstance(venue, SimVenue)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.stop()


def prioritised(strategy: str = "s1", client: str = "c1") -> Event:
    """The intent.prioritised event the real stages make of one submission."""
    data = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", strategy_id=strategy)
    data["clientIntentId"] = client
    rec = Record("sep.intents.submitted", 0, 0, T0, strategy.encode(), orjson.dumps(data))
    topic = TOPOLOGY.stage("ingest").events_topic
    sub = decode_event(ingest_record(rec, MemoryTable(), T0, topic=topic).outputs[0].value)
    _, accepted = (decode_event(o.value) for o in validate_event(sub, TOPOLOGY, ("sim",), T0))
    return decode_event(prioritise_event(accepted, TOPOLOGY, T0)[1].value)


async def run(
    stage_build: Callable[[StageContext], StageProcessor],
    context: StageContext,
    topic: str,
    events: list[Event],
) -> list[Event]:
    stage = stage_build(context)
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    records = [Record(topic, 0, i, T0, None, encode_event(e)) for i, e in enumerate(events)]
    await stage.process(records, emit)
    return [decode_event(o.value) for o in sent]


# ------------------------------------------------------------------------------ validate


async def test_validate_refuses_new_intents_of_a_killed_strategy_only(tmp_path: Path) -> None:
    runtime, lifecycle = build_memory_runtime(
        TOPOLOGY, Settings(data_dir=tmp_path), ("ingest", "validate", "prioritise", "plan")
    )
    kill = switch(strategy_scope("s1"), True)
    runtime.feed("sep.control", kill_key(strategy_scope("s1")).encode(), encode_event(kill))
    await lifecycle.ensure_started()
    try:
        for strategy in ("s1", "s2"):
            body = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", strategy_id=strategy)
            runtime.feed("sep.intents.submitted", strategy.encode(), orjson.dumps(body))
        await runtime.run_until_idle()
    finally:
        await lifecycle.stop()
    validated = [decode_event(r.value) for r in runtime.topics.log["sep.intents.validated"]]
    by_topic = {e.topic: e for e in validated}
    refused = by_topic["risk.rejected"].payload
    assert refused["rule"] == "killed"
    assert refused["message"] == "kill switch strategy:s1 engaged by alice: drill 7"
    assert refused["actual"] == "strategy:s1"
    assert by_topic["risk.rejected"].seq == 2
    # The other strategy trades on: accepted and planned.
    assert "intent.accepted" in by_topic
    plans = [decode_event(r.value).topic for r in runtime.topics.log["sep.plans"]]
    assert plans == ["plan.created"]


async def test_validate_obeys_a_global_kill_until_it_is_resumed(tmp_path: Path) -> None:
    runtime, lifecycle = build_memory_runtime(
        TOPOLOGY, Settings(data_dir=tmp_path), ("ingest", "validate")
    )
    key = kill_key("global").encode()
    await lifecycle.ensure_started()
    try:
        runtime.feed("sep.control", key, encode_event(switch("global", True)))
        for i in range(3):
            body = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", strategy_id=f"s{i}")
            runtime.feed("sep.intents.submitted", b"k", orjson.dumps(body))
        await runtime.run_until_idle()
        runtime.feed("sep.control", key, encode_event(switch("global", False, seq=2)))
        body = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", strategy_id="s9")
        runtime.feed("sep.intents.submitted", b"k", orjson.dumps(body))
        await runtime.run_until_idle()
    finally:
        await lifecycle.stop()
    topics = [decode_event(r.value).topic for r in runtime.topics.log["sep.intents.validated"]]
    assert topics == ["risk.rejected"] * 3 + ["risk.approved", "intent.accepted"]


# ---------------------------------------------------------------------------------- plan


async def test_plan_makes_no_new_plan_while_killed(sim: SimVenue) -> None:
    control = ControlState()
    context = StageContext(
        TOPOLOGY, Settings(), venues={"sim": sim}, clock=lambda: DURING, control=control
    )
    control.apply(switch("global", True))
    topic = "sep.intents.prioritised"
    out = await run(plan_stage.build, context, topic, [prioritised("s1", "a")])
    assert [(e.topic, e.payload["reason"]) for e in out] == [("plan.rejected", "killed")]
    assert out[0].payload["detail"] == "kill switch global engaged by alice: drill 7"
    control.apply(switch("global", False, seq=2))
    out = await run(plan_stage.build, context, topic, [prioritised("s1", "b")])
    assert [e.topic for e in out] == ["plan.created"]


# ------------------------------------------------------------------------------- execute


def planned(event: Event, pools: Mapping[str, Sequence[PoolState]]) -> Event:
    return decode_event(plan_output(event, pools, TOPOLOGY, T0).value)


async def test_execute_sends_no_step_while_killed_and_a_redelivery_after_resume_neither(
    sim: SimVenue,
) -> None:
    control = ControlState()
    table = MemoryTable()
    context = StageContext(
        TOPOLOGY, Settings(), venues={"sim": sim}, clock=lambda: DURING, control=control
    )
    context.table = lambda name, help: table
    plan = planned(prioritised(), {"sim": await sim.pools()})
    control.apply(switch(strategy_scope("s1"), True))
    out = await run(execute_stage.build, context, "sep.plans", [plan])
    assert [(e.topic, e.seq) for e in out] == [
        ("exec.started", 6),
        ("exec.step_failed", 7),
        ("exec.failed", 8),
    ]
    failed = out[1].parse_payload()
    assert isinstance(failed, ExecStepFailed)
    assert failed.reason == "killed: kill switch strategy:s1 engaged by alice: drill 7"
    assert out[2].payload["reason"] == "step 1 failed: killed"
    assert sim.total_fills() == 0
    assert await sim.lookup(failed.step_id) is None  # nothing reached the venue
    # Resumed, then the plan comes again (a crash before the commit): the refusal stands.
    control.apply(switch(strategy_scope("s1"), False, seq=2))
    again = await run(execute_stage.build, context, "sep.plans", [plan])
    assert [e.event_id for e in again] == [e.event_id for e in out]
    assert await sim.lookup(failed.step_id) is None


async def test_execute_lets_a_step_sent_before_the_kill_land_and_reports_it(
    sim: SimVenue,
) -> None:
    control = ControlState()
    context = StageContext(
        TOPOLOGY, Settings(), venues={"sim": sim}, clock=lambda: DURING, control=control
    )
    plan = planned(prioritised(), {"sim": await sim.pools()})
    step = plan.payload_as(PlanCreated).plan.steps[0]
    await sim.submit(step)  # sent by a worker that crashed before reporting it
    control.apply(switch("global", True))
    out = await run(execute_stage.build, context, "sep.plans", [plan])
    assert [e.topic for e in out] == [
        "exec.started",
        "exec.step_submitted",
        "exec.step_filled",
        "exec.completed",
    ]
    assert sim.fill_counts() == {step.step_id: 1}


async def test_execute_ignores_a_kill_of_another_strategy(sim: SimVenue) -> None:
    control = ControlState()
    control.apply(switch(strategy_scope("other"), True))
    context = StageContext(
        TOPOLOGY, Settings(), venues={"sim": sim}, clock=lambda: DURING, control=control
    )
    plan = planned(prioritised(), {"sim": await sim.pools()})
    out = await run(execute_stage.build, context, "sep.plans", [plan])
    assert out[-1].topic == "exec.completed"


@pytest.mark.parametrize("strategy", ["desk a/momentum", "bad id!", "μ-strat", "x" * 128])
def test_every_strategy_id_an_intent_may_carry_can_be_killed(strategy: str) -> None:
    """The switch takes the ids intents take (printable, 1-128): a strategy whose id has a
    space or a slash trades, so it must be stoppable on its own."""
    control = ControlState()
    control.apply(switch(strategy_scope(strategy), True))
    intent = prioritised(strategy).payload_as(IntentPrioritised).intent
    refusal = killed_plan(control, intent)
    assert refusal is not None
    assert refusal.reason == "killed"
    assert killed_plan(control, prioritised("other").payload_as(IntentPrioritised).intent) is None


def test_a_control_character_is_no_strategy_id() -> None:
    with pytest.raises(ValidationError):
        KillSwitchChanged(scope="strategy:a\nb", actor="alice", reason="r")
    with pytest.raises(ValidationError):
        KillSwitchChanged(scope="strategy:", actor="alice", reason="r")
