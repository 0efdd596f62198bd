"""The planner's side of the venue breakers, and a whole breaker cycle through the real plan
and execute stages on two real sim venues: failures open ``sim``, the planner routes around
it, after the cool-down one probe from the round's partition half-opens it, and the probe's
outcome closes it (or opens it again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.breakers import machine
from pipeline.breakers.config import BreakersSpec
from pipeline.breakers.planning import Admission, PlanningBreakers, probe_partition
from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.control.keys import breaker_key
from pipeline.control.publish import control_event
from pipeline.control.state import ControlState
from pipeline.models.breakers import VenueBreakerChanged
from pipeline.models.events import Event, PlanCreated, PlanRejected
from pipeline.plugins.venue import VenueContext
from pipeline.samples import submission
from pipeline.stages import execute as execute_stage
from pipeline.stages import plan as plan_stage
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.ingest import ingest_record
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from pipeline.topology.models import PluginUse, Topology
from plugins.sim_venue import SimVenue, SimVenueConfig

T0 = 1_700_000_000_000
PARTITIONS = 8
SPEC = BreakersSpec(failures=3, cooldown_ms=1_000, probes=1)


class SimB(SimVenue):
    """A second sim venue (its own ledger), dearer than ``sim``: the planner prefers ``sim``."""

    name = "sim_b"


def topology() -> Topology:
    base = load_topology()
    venues = dict(base.plugins.venues)
    venues["uniswap_v3"] = PluginUse(enabled=False)  # no chain in a unit test
    return base.model_copy(
        update={
            "plugins": base.plugins.model_copy(update={"venues": venues}),
            "breakers": SPEC,
        }
    )


TOPOLOGY = topology()


def pool(fee: int) -> dict[str, Any]:
    return {
        "pool_id": f"weth-usdc-{fee}",
        "token0": "WETH",
        "token1": "USDC",
        "reserve0": "10000",
        "reserve1": "30000000",
        "fee": fee,
    }


async def venue(cls: type[SimVenue], tmp_path: Path, fee: int, failing: int) -> SimVenue:
    assets = {a.symbol: a for a in TOPOLOGY.assets}
    data: dict[str, Any] = {"pools": [pool(fee)]}
    if failing:
        data["inject_failures"] = {"first": failing, "reason": "reverted"}
    config = SimVenueConfig.model_validate(data, context={"assets": assets})
    made = cls(config, VenueContext(data_dir=tmp_path / cls.name, assets=assets))
    await made.start()
    return made


class Desk:
    """The plan and execute stages of one worker, a shared control plane, a clock."""

    def __init__(self, venues: dict[str, SimVenue]) -> None:
        self.now = T0 + 1_000
        self.control = ControlState()
        self.published: list[VenueBreakerChanged] = []
        self.seen: dict[str, int] = {}
        context = StageContext(
            TOPOLOGY,
            Settings(),
            venues=dict(venues),
            clock=lambda: self.now,
            control=self.control,
        )
        self.plan = plan_stage.build(context)
        self.execute = execute_stage.build(context)
        self.count = 0

    async def _run(self, stage: Any, records: list[Record]) -> list[Event]:
        sent: list[Output] = []

        async def emit(output: Output) -> None:
            sent.append(output)

        await stage.process(records, emit)
        events = [decode_event(o.value) for o in sent]
        for output, event in zip(sent, events, strict=True):
            if output.topic == "sep.control":  # as every worker's control feed would
                assert output.key == breaker_key("sim").encode()
                assert self.control.apply(event), f"seq {event.seq} collided"
                self.published.append(event.payload_as(VenueBreakerChanged))
        return [e for o, e in zip(sent, events, strict=True) if o.topic != "sep.control"]

    async def intent(self, partition: int, venues: list[str] | None = None) -> list[Event]:
        """One intent through plan (on ``partition``) and, if planned, execute."""
        self.count += 1
        data = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", venues=venues)
        data["clientIntentId"] = f"c{self.count}"
        rec = Record("sep.intents.submitted", 0, self.count, T0, b"s", orjson.dumps(data))
        ingested = ingest_record(rec, MemoryTable(), T0, topic="sep.intents.ingested")
        sub = decode_event(ingested.outputs[0].value)
        names = ("sim", "sim_b")
        _, accepted = (decode_event(o.value) for o in validate_event(sub, TOPOLOGY, names, T0))
        event = decode_event(prioritise_event(accepted, TOPOLOGY, T0)[1].value)
        record = Record(
            "sep.intents.prioritised", partition, self.count, T0, None, encode_event(event)
        )
        plans = await self._run(self.plan, [record])
        if plans[0].topic != "plan.created":
            return plans
        plan_record = Record("sep.plans", partition, self.count, T0, None, encode_event(plans[0]))
        return plans + await self._run(self.execute, [plan_record])


def venue_of(events: list[Event]) -> str:
    return events[0].payload_as(PlanCreated).plan.steps[0].venue


@pytest.fixture
async def make_desk(tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[SimVenue] = []

    async def _make(failing: int) -> Desk:
        sim = await venue(SimVenue, tmp_path, 500, failing)
        sim_b = await venue(SimB, tmp_path, 3_000, 0)
        opened.extend((sim, sim_b))
        return Desk({"sim": sim, "sim_b": sim_b})

    yield _make
    for made in opened:
        await made.stop()


@pytest.mark.parametrize("failing", [3, 4], ids=["probe-fills", "probe-fails-once"])
async def test_a_failing_venue_is_routed_around_probed_and_recovers(
    make_desk: Any, failing: int
) -> None:
    desk: Desk = await make_desk(failing)
    # Three counted failures on sim (the injected reverts) open its breaker.
    for _ in range(3):
        events = await desk.intent(partition=0)
        assert venue_of(events) == "sim"
        assert events[-1].topic == "exec.failed"
    [opened] = desk.published
    assert (opened.state, opened.failures, opened.actor) == ("open", 3, "execute")
    assert opened.last_reason.startswith("reverted: injected failure")
    assert opened.retry_at_ms == desk.now + 1_000
    # Open: routed around (sim_b quotes worse, but sim is not a choice now) ...
    events = await desk.intent(partition=0)
    assert (venue_of(events), events[-1].topic) == ("sim_b", "exec.completed")
    # ... and an intent that may use sim alone is refused, naming the breaker.
    [refused] = await desk.intent(partition=0, venues=["sim"])
    rejection = refused.payload_as(PlanRejected)
    assert rejection.reason == "breaker_open"
    assert "circuit breaker of venue 'sim' is open" in rejection.detail
    assert "3 consecutive failures" in rejection.detail

    for round_ in range(failing - 2):
        desk.now += 1_001  # the cool-down is over
        seq = desk.control.seq(breaker_key("sim"))
        probing = probe_partition("sim", seq, PARTITIONS)
        other = (probing + 1) % PARTITIONS
        # Only the round's partition may probe: another partition still routes around.
        assert venue_of(await desk.intent(partition=other)) == "sim_b"
        events = await desk.intent(partition=probing)
        assert venue_of(events) == "sim"  # the probe goes to sim although sim_b is allowed
        half, outcome = desk.published[-2:]
        assert (half.state, half.actor, half.probes) == ("half_open", "plan", 1)
        assert half.probe_partition == probing
        if round_ < failing - 3:  # the injected failures are not used up: it fails
            assert events[-1].topic == "exec.failed"
            assert (outcome.state, outcome.previous, outcome.trips) == ("open", "half_open", 2)
        else:
            assert events[-1].topic == "exec.completed"
            assert (outcome.state, outcome.previous) == ("closed", "half_open")
    # Closed: sim is the planner's choice again, from any partition.
    assert venue_of(await desk.intent(partition=5)) == "sim"
    states = [p.state.value for p in desk.published]
    assert states == ["open"] + ["half_open", "open"] * (failing - 3) + ["half_open", "closed"]


async def test_the_round_s_probes_are_limited_within_a_batch() -> None:
    """Five intents of the probe partition in one batch: one probe, the others excluded."""
    control = ControlState()
    breakers = PlanningBreakers(SPEC, control, "sep.control", PARTITIONS, ["sim", "sim_b"])
    state = machine.trip(
        machine.initial("sim"),
        failures=3,
        last_reason="reverted",
        now_ms=T0,
        policy=SPEC.policy("sim"),
        actor="execute",
        why="t",
    )
    control.apply(control_event(breaker_key("sim"), "venue.breaker_changed", state, 1, T0))
    data = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1")
    rec = Record("sep.intents.submitted", 0, 0, T0, b"s", orjson.dumps(data))
    sub = decode_event(
        ingest_record(rec, MemoryTable(), T0, topic="sep.intents.ingested").outputs[0].value
    )
    intent = sub.payload_as(
        __import__("pipeline.models.events").models.events.IntentSubmitted
    ).intent
    probing = probe_partition("sim", 1, PARTITIONS)
    cooling = breakers.admit([(intent, probing)], T0 + 500)
    assert cooling == [Admission(frozenset({"sim"}), None, (state,))]
    admitted = breakers.admit([(intent, probing)] * 5 + [(intent, probing + 1)], T0 + 1_000)
    assert [a.probe for a in admitted] == ["sim", None, None, None, None, None]
    assert all(a.excluded == {"sim"} for a in admitted[1:])
