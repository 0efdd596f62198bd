"""Payloads that carry an intent share its wire form (``intent_wire``): the same JSON as a
plain dump, key for key and in the same order."""

from __future__ import annotations

import gc
import random
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.models import events
from pipeline.models.base import WireModel, built
from pipeline.models.events import (
    IntentAccepted,
    IntentPrioritised,
    IntentSubmitted,
    PlanCreated,
    intent_wire,
)
from pipeline.models.intent import Intent
from pipeline.models.plan import ExecutionPlan, ExecutionStep, RouteLeg, SwapMode
from pipeline.samples import random_submission
from pipeline.topology import load_topology


def _intents(count: int) -> list[Intent]:
    topology = load_topology()
    rng = random.Random(7)
    out = []
    for i in range(count):
        body: dict[str, Any] = random_submission(
            topology, rng, strategy_id=f"s{i % 3}", client_intent_id=f"c{i}" if i % 2 else None
        )
        if i % 4 == 0:
            body["mlFeatures"] = {"volatility": 0.25}
        if i % 5 == 0:
            body["constraints"]["allowedVenues"] = ["sim"]
            body["constraints"]["onPartialFill"] = "REPLAN"
        out.append(
            Intent.model_validate(
                {**body, "id": f"intent-{i:026d}", "createdAtMs": 1_700_000_000_000 + i}
            )
        )
    return out


def _plan(intent: Intent) -> ExecutionPlan:
    leg = RouteLeg(
        pool_id="p1", venue="sim", token_in="WETH", token_out="USDC", amount_in=10, amount_out=7
    )
    step = ExecutionStep(
        step_id="plan-1-1",
        venue="sim",
        mode=SwapMode.EXACT_IN,
        legs=(leg,),
        asset_in="WETH",
        asset_out="USDC",
        amount_in=Decimal("0.5"),
        min_out=Decimal("1.25"),
        amount_out=Decimal("1.3"),
        max_in=Decimal("0.5"),
    )
    return ExecutionPlan(
        id="plan-1",
        intent_id=intent.id,
        steps=(step,),
        estimated_out=Decimal("1.3"),
        estimated_cost=Decimal("0.0015"),
        estimated_duration_ms=0,
        risk_score=3,
        price_impact=Decimal("0.0001"),
    )


def _payloads(intent: Intent) -> list[WireModel]:
    return [
        IntentSubmitted(intent=intent),
        IntentSubmitted(intent=intent, lane="urgent"),
        IntentAccepted(intent=intent, lane=None),
        IntentPrioritised(
            intent=intent, priority=7, lane="normal", score=Decimal("0.61"), scorer_version="v1"
        ),
        IntentPrioritised(intent=intent, priority=1, lane="bulk", score=Decimal(0)),
        PlanCreated(plan=_plan(intent), intent=intent, priority=4),
    ]


@pytest.mark.parametrize("intent", _intents(20), ids=lambda i: i.id[-3:])
def test_wire_form_is_the_plain_dump_in_the_same_order(intent: Intent) -> None:
    for payload in _payloads(intent):
        plain = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
        wire = payload.to_wire()
        assert wire == plain
        assert orjson.dumps(wire) == orjson.dumps(plain)  # key order too
        assert payload.to_wire() == plain  # again, from the shared intent form


def test_a_copy_of_an_intent_gets_its_own_wire_form() -> None:
    intent = _intents(1)[0]
    assert intent_wire(intent)["strategyId"] == intent.strategy_id
    other = intent.model_copy(update={"strategy_id": "someone-else"})
    assert IntentAccepted(intent=other).to_wire()["intent"]["strategyId"] == "someone-else"
    assert intent_wire(intent)["strategyId"] == intent.strategy_id


def test_the_wire_form_is_forgotten_with_its_intent() -> None:
    intents = _intents(3)
    for intent in intents:
        intent_wire(intent)
    mine = {id(i) for i in intents}
    assert mine <= set(events._INTENT_WIRE)
    del intent, intents
    gc.collect()
    assert not mine & set(events._INTENT_WIRE)


@pytest.mark.parametrize(
    "score", [Decimal("0.1000"), Decimal("1"), Decimal("0E-4"), Decimal("0.0001"), Decimal("1E+1")]
)
@pytest.mark.parametrize("version", [None, "v2", ""])
def test_a_prioritised_payload_written_out_is_the_plain_dump(
    score: Decimal, version: str | None
) -> None:
    # ``IntentPrioritised.to_wire`` writes its fields itself: the same dict, in the same order.
    intent = _intents(1)[0]
    payload = built(
        IntentPrioritised,
        intent=intent,
        priority=10,
        lane="fast",
        score=score,
        scorer="model",
        scorer_version=version,
    )
    plain = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert orjson.dumps(payload.to_wire()) == orjson.dumps(plain)


def test_a_prioritised_payload_built_with_other_types_takes_the_serializers_path() -> None:
    intent = _intents(1)[0]
    payload = built(
        IntentPrioritised, intent=intent, priority=True, lane="fast", score=Decimal("0.5")
    )
    plain = payload.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)
    assert orjson.dumps(payload.to_wire()) == orjson.dumps(plain)


@pytest.mark.parametrize("model", [IntentSubmitted, IntentAccepted])
def test_an_intent_and_lane_built_with_another_type_takes_the_serializers_path(
    model: type[IntentSubmitted] | type[IntentAccepted],
) -> None:
    class Lane(str):
        pass

    payload = built(model, intent=_intents(1)[0], lane=Lane("fast"))
    plain = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert orjson.dumps(payload.to_wire()) == orjson.dumps(plain)
