"""Builders shared by the risk tests: intents, fills and acceptances as the stages make them."""

from __future__ import annotations

from decimal import Decimal

from pipeline.ids import new_ulid
from pipeline.models.events import (
    Event,
    ExecCompleted,
    ExecStepFilled,
    IntentAccepted,
    PlanRejected,
    make_event,
)
from pipeline.models.intent import Intent
from pipeline.samples import submission
from pipeline.topology import load_topology

TOPOLOGY = load_topology()
T0 = 1_800_000_000_000


def intent(
    kind: str = "ACQUIRE",
    subject: str = "WETH",
    amount: str = "1",
    *,
    strategy: str = "s1",
    counter: str = "USDC",
    created_ms: int = T0,
    window_ms: int = 300_000,
) -> Intent:
    body = submission(
        TOPOLOGY, kind, subject, counter, amount, strategy_id=strategy, time_window_ms=window_ms
    )
    return Intent.model_validate({**body, "id": f"intent-{new_ulid()}", "createdAtMs": created_ms})


def accepted(i: Intent, at_ms: int = T0) -> Event:
    return make_event(
        "intent.accepted",
        IntentAccepted(intent=i),
        correlation_id=i.id,
        seq=3,
        causation_id=None,
        at_ms=at_ms,
        id_ms=at_ms,
    )


def filled(
    i: Intent,
    asset_in: str,
    amount_in: str,
    asset_out: str,
    amount_out: str,
    *,
    step: str | None = None,
    at_ms: int = T0,
) -> Event:
    payload = ExecStepFilled(
        plan_id="plan-1",
        step_id=step or f"{i.id}-s",
        venue="sim",
        order_ref="r",
        asset_in=asset_in,
        asset_out=asset_out,
        amount_in=Decimal(amount_in),
        amount_out=Decimal(amount_out),
    )
    return make_event(
        "exec.step_filled",
        payload,
        correlation_id=i.id,
        seq=8,
        causation_id=None,
        at_ms=at_ms,
        id_ms=at_ms,
    )


def completed(i: Intent, at_ms: int = T0) -> Event:
    payload = ExecCompleted(
        plan_id="plan-1",
        asset_in="USDC",
        asset_out="WETH",
        amount_in=Decimal(1),
        amount_out=Decimal(1),
        realised_slippage=Decimal(0),
    )
    return make_event(
        "exec.completed",
        payload,
        correlation_id=i.id,
        seq=9,
        causation_id=None,
        at_ms=at_ms,
        id_ms=at_ms,
    )


def plan_rejected(i: Intent, at_ms: int = T0) -> Event:
    return make_event(
        "plan.rejected",
        PlanRejected(reason="no_route", detail=""),
        correlation_id=i.id,
        seq=5,
        causation_id=None,
        at_ms=at_ms,
        id_ms=at_ms,
    )
