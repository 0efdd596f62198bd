"""``built``: a model set from computed values equals the validated model, field for field
(the plan stage builds its plans so, ``pipeline.stages.plan``)."""

from __future__ import annotations

import random
from decimal import Decimal

import orjson
import pytest

from pipeline.models.base import built
from pipeline.models.events import (
    IntentAccepted,
    IntentPrioritised,
    IntentSubmitted,
    PlanCreated,
    RiskApproved,
    make_event,
)
from pipeline.models.intent import Intent
from pipeline.models.plan import ExecutionPlan, ExecutionStep, RouteLeg, SwapMode
from pipeline.priority.scoring import bucket
from pipeline.samples import random_submission
from pipeline.stages.plan import plan_intent
from pipeline.stages.prioritise import prioritised_output
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from tests.stages.test_plan import POOLS

TOPOLOGY = load_topology()


def _same(made: ExecutionPlan | ExecutionStep) -> None:
    validated = type(made).model_validate(made.model_dump())
    assert made == validated
    assert made.__dict__ == validated.__dict__
    assert list(made.__dict__) == list(validated.__dict__)
    assert repr(made) == repr(validated)
    assert orjson.dumps(made.to_wire()) == orjson.dumps(validated.to_wire())


def test_a_step_built_equals_the_validated_step() -> None:
    leg = RouteLeg(pool_id="p", venue="sim", token_in="A", token_out="B", amount_in=3, amount_out=2)
    step = built(
        ExecutionStep,
        step_id="s-1",
        venue="sim",
        mode=SwapMode.EXACT_OUT,
        legs=(leg,),
        asset_in="A",
        asset_out="B",
        amount_in=Decimal("0.000003"),
        min_out=Decimal("2E-6"),
        amount_out=Decimal("0.000002"),
        max_in=Decimal("0.0000031"),
    )
    _same(step)
    assert step.model_fields_set == ExecutionStep.model_validate(
        step.model_dump()
    ).model_fields_set - {
        "kind",
        "not_before_ms",
        "limit_price",
    }


def test_unknown_or_missing_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown"):
        built(
            RouteLeg,
            pool_id="p",
            venue="v",
            token_in="A",
            token_out="B",
            amount_in=1,
            amount_out=1,
            x=1,
        )
    with pytest.raises(TypeError, match="required"):
        built(RouteLeg, pool_id="p")


@pytest.mark.parametrize("seed", range(5))
def test_the_planners_plans_equal_their_validated_selves(seed: int) -> None:
    rng = random.Random(seed)
    planned = 0
    for i in range(40):
        body = random_submission(
            TOPOLOGY, rng, strategy_id="s", client_intent_id=f"c{i}", venues=["sim"]
        )
        intent = Intent.model_validate(
            {**body, "id": f"intent-{i:026d}", "createdAtMs": 1_700_000_000_000}
        )
        result = plan_intent(intent, 5, POOLS, TOPOLOGY)
        if isinstance(result, PlanCreated):
            planned += 1
            _same(result.plan)
            for step in result.plan.steps:
                _same(step)
    assert planned > 10


@pytest.mark.parametrize("score", ["0", "0.00004", "0.5", "0.99995", "1", "1.7", "-0.2"])
def test_prioritised_payloads_equal_their_validated_selves(score: str) -> None:
    body = random_submission(TOPOLOGY, random.Random(1), strategy_id="s", client_intent_id="c")
    intent = Intent.model_validate({**body, "id": "intent-1", "createdAtMs": 1_700_000_000_000})
    accepted = make_event(
        "intent.accepted",
        IntentAccepted(intent=intent, lane="normal"),
        correlation_id=intent.id,
        seq=3,
        causation_id="x",
        at_ms=1_700_000_000_100,
        id_ms=1_700_000_000_000,
    )
    result = bucket(Decimal(score), TOPOLOGY)
    output = prioritised_output(accepted, result, "model", "v1", TOPOLOGY, 1_700_000_000_100)
    assert output.event is not None
    made = output.event.payload_as(IntentPrioritised)
    validated = IntentPrioritised.model_validate(made.model_dump())
    assert made == validated
    assert list(made.__dict__) == list(validated.__dict__)
    assert orjson.dumps(made.to_wire()) == orjson.dumps(validated.to_wire())


@pytest.mark.parametrize("seed", range(3))
def test_risk_approvals_equal_their_validated_selves(seed: int) -> None:
    rng = random.Random(seed)
    approved = 0
    for i in range(30):
        body = random_submission(TOPOLOGY, rng, strategy_id="s", client_intent_id=f"c{i}")
        intent = Intent.model_validate({**body, "id": f"intent-{i}", "createdAtMs": 1_000})
        submitted = make_event(
            "intent.submitted",
            IntentSubmitted(intent=intent),
            correlation_id=intent.id,
            seq=1,
            causation_id=None,
            at_ms=2_000,
            id_ms=1_000,
        )
        for output in validate_event(submitted, TOPOLOGY, ["sim"], 2_000):
            if output.event is not None and output.event.topic == "risk.approved":
                approved += 1
                made = output.event.payload_as(RiskApproved)
                validated = RiskApproved.model_validate(made.model_dump())
                assert made == validated
                assert orjson.dumps(made.to_wire()) == orjson.dumps(validated.to_wire())
    assert approved > 5
