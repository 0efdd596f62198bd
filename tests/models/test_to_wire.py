"""The shared wire model: ``to_wire`` is ``model_dump``'s JSON form, key for key and in order."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import orjson

from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.models.base import WireModel, built
from pipeline.models.events import ExecStepFilled, ExecStepSubmitted, IntentExpired
from pipeline.models.plan import StepKind
from pipeline.runtime.delivery.memory import build_memory_runtime
from pipeline.samples import random_submission
from pipeline.topology import load_topology
from pipeline.topology.models import PluginUse


def _dumped(model: WireModel) -> list[tuple[str, object]]:
    return list(model.model_dump(mode="json", by_alias=True, exclude_none=True).items())


def test_to_wire_is_model_dumps_json_form() -> None:
    payloads: list[WireModel] = [
        built(
            ExecStepFilled,
            plan_id="plan-1",
            step_id="plan-1-0",
            venue="sim",
            order_ref="sim-1",
            asset_in="USDC",
            asset_out="WETH",
            amount_in=Decimal("3456.123456"),
            amount_out=Decimal("1E-18"),  # written out: "0.000000000000000001"
            landed_at=7,
            fee=Decimal("0.5"),
            fee_asset="USDC",
            paper=True,
        ),
        ExecStepSubmitted(
            plan_id="plan-1",
            step_id="plan-1-0",
            venue="book",
            order_ref="o-1",
            kind=StepKind.ORDER,  # an enum: its value
            limit_price=Decimal("2500.10"),
        ),
        IntentExpired(deadline_ms=1, observed_at_ms=2, stage="execute"),  # None left out
    ]
    for payload in payloads:
        assert list(payload.to_wire().items()) == _dumped(payload)


async def test_every_payload_of_a_run_dumps_as_model_dump(tmp_path: Path) -> None:
    topology = load_topology()
    venues = {
        name: use if name == "sim" else PluginUse(enabled=False)
        for name, use in topology.plugins.venues.items()
    }
    topology = topology.model_copy(
        update={"plugins": topology.plugins.model_copy(update={"venues": venues})}
    )
    runtime, lifecycle = build_memory_runtime(
        topology,
        Settings(data_dir=tmp_path),
        ("ingest", "validate", "prioritise", "plan", "execute"),
    )
    await lifecycle.ensure_started()
    try:
        rng = random.Random(2)
        for i in range(20):
            body = random_submission(
                topology, rng, strategy_id="w", client_intent_id=f"w{i}", venues=["sim"]
            )
            runtime.feed("sep.intents.submitted", b"w", orjson.dumps(body))
        await runtime.run_until_idle()
    finally:
        await lifecycle.stop()
    seen: set[str] = set()
    topics = ("sep.intents.ingested", "sep.intents.validated", "sep.intents.prioritised")
    for topic in (*topics, "sep.plans", "sep.executions"):
        for record in runtime.topics.log[topic]:
            event = decode_event(record.value)
            payload = event.parse_payload()
            seen.add(event.topic)
            assert list(payload.to_wire().items()) == _dumped(payload)
            assert payload.to_wire() == event.payload  # what went on the wire
    assert {"intent.submitted", "plan.created", "exec.step_filled", "exec.completed"} <= seen
