"""The risk-check contract, and its one hook point in the validate stage: the checks the
topology enables run after the built-in limits, on every well-formed intent."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from plugin_support import TOPOLOGY, MaxAmount, MaxAmountConfig, RiskPlugin, topology_with

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.models.events import Event
from pipeline.models.intent import Intent
from pipeline.plugins import RiskBreach, RiskCheck, RiskCheckContext, build_risk_checks
from pipeline.plugins.loading import SepPluginManager, make_plugin_manager
from pipeline.plugins.risk import run_checks
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.ingest import ingest_record
from pipeline.stages.validate import ValidateStage, validate_event
from pipeline.topology import TopologyError

T0 = 1_700_000_000_000
CONTEXT = RiskCheckContext(assets={a.symbol: a for a in TOPOLOGY.assets}, limits=TOPOLOGY.risk)


def submitted(amount: str, client_id: str = "c-1", offset: int = 0) -> Event:
    body = submission(
        TOPOLOGY, "DISPOSE", "WETH", "USDC", amount, strategy_id="dca", client_intent_id=client_id
    )
    record = Record("sep.intents.submitted", 0, offset, T0, b"dca", orjson.dumps(body))
    outcome = ingest_record(
        record, MemoryTable(), T0 + 10, topic=TOPOLOGY.stage("ingest").events_topic
    )
    return decode_event(outcome.outputs[0].value)


def intent_of(event: Event) -> Intent:
    return Intent.model_validate(event.payload["intent"])


class Broken:
    name = "broken"

    def check(self, intent: Intent, now_ms: int) -> RiskBreach | None:
        raise KeyError("price")


def test_a_check_is_a_runtime_checkable_protocol() -> None:
    assert isinstance(MaxAmount(MaxAmountConfig(max_amount=1), CONTEXT), RiskCheck)
    assert not isinstance(object(), RiskCheck)


def test_run_checks_collects_breaches_and_a_check_that_raises_refuses() -> None:
    """Fail closed: an intent a check could not judge is not waved through."""
    limit = MaxAmount(MaxAmountConfig(max_amount=1), CONTEXT)
    intent = intent_of(submitted("2"))
    breaches = run_checks([limit, Broken()], intent, T0)
    assert [b.rule for b in breaches] == ["max_amount", "broken"]
    assert "KeyError" in breaches[1].message
    assert run_checks([limit], intent_of(submitted("0.5")), T0) == []


def test_validate_event_runs_the_extra_checks_after_the_limits() -> None:
    limit = MaxAmount(MaxAmountConfig(max_amount=1), CONTEXT)
    small = validate_event(submitted("0.5"), TOPOLOGY, ("sim",), T0, extra_checks=[limit])
    approved = decode_event(small[0].value)
    assert approved.topic == "risk.approved"
    assert approved.payload["checks"] == ["max_notional", "max_slippage", "max_amount"]
    (big,) = validate_event(submitted("2"), TOPOLOGY, ("sim",), T0, extra_checks=[limit])
    rejected = decode_event(big.value)
    assert rejected.topic == "risk.rejected"
    assert rejected.payload["rule"] == "max_amount"
    assert rejected.payload["message"] == "amount 2 exceeds 1"


@pytest.fixture
def pm() -> Iterator[SepPluginManager]:
    manager = make_plugin_manager(load_entrypoints=False)
    manager.register(RiskPlugin(), name="test-risk")
    try:
        yield manager
    finally:
        manager.unregister(name="test-risk")


async def test_the_stage_runs_the_checks_the_topology_enables(pm: SepPluginManager) -> None:
    topology = topology_with(risk_checks={"max_amount": {"config": {"max_amount": 1}}})
    context = StageContext(topology, Settings(), clock=lambda: T0)
    stage = ValidateStage(context, risk_checks=build_risk_checks(topology, pm))
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    records = [
        Record(topology.stage("validate").inputs[0], 0, i, T0, None, encode_event(event))
        for i, event in enumerate([submitted("2"), submitted("0.5", "c-2", 1)])
    ]
    await stage.process(records, emit)
    outcomes = [(e.topic, e.payload.get("rule")) for o in sent if (e := decode_event(o.value))]
    assert outcomes == [
        ("risk.rejected", "max_amount"),
        ("risk.approved", None),
        ("intent.accepted", None),
    ]


def test_the_stage_built_from_the_topology_asks_the_plugin_manager() -> None:
    """Without ``risk_checks`` the stage builds the topology's own (no plugin provides one
    here: installed entry points are not loaded under pytest)."""
    ValidateStage(StageContext(TOPOLOGY, Settings()))  # none enabled: nothing to build
    topology = topology_with(risk_checks={"max_amount": {"config": {"max_amount": 1}}})
    with pytest.raises(TopologyError) as info:
        ValidateStage(StageContext(topology, Settings()))
    assert [path for path, _ in info.value.problems] == ["plugins.risk_checks.max_amount"]
