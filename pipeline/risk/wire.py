"""The risk book's facts read straight from an event's JSON, without the event models.

Every validating worker reads every intent's acceptance and fills (``pipeline.risk.feed``),
and validating a nested intent with pydantic cost more than everything else the feed does.
The events were validated by the stage that wrote them, so only the few fields the book uses
are taken here, from the wire names of ``pipeline.models`` (``IntentAccepted``,
``ExecStepFilled``, ``PlanCreated``); ``tests/risk/test_wire.py`` checks that these readings
equal the models' on the stages' own events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.models.intent import IntentType
from pipeline.risk.book import ZERO, Fill, OpenIntent

_TYPES = {kind.value: kind for kind in IntentType}
"""By wire value: a dict look-up, not the enum's call (an unknown one still raises)."""


def open_intent(payload: dict[str, Any]) -> OpenIntent:
    """The open intent of an ``intent.accepted`` payload."""
    intent = payload["intent"]
    subject, counter = intent["assets"]
    amount = subject.get("amount")
    created = intent.get("createdAtMs")
    return OpenIntent(
        intent["id"],
        intent["strategyId"],
        _TYPES.get(intent["type"]) or IntentType(intent["type"]),
        subject["asset"]["symbol"],
        counter["asset"]["symbol"],
        Decimal(amount) if amount is not None else ZERO,
        None if created is None else created + intent["constraints"]["timeWindowMs"],
    )


def strategy_of_plan(payload: dict[str, Any]) -> tuple[str, str]:
    """(intent id, strategy id) of a ``plan.created`` payload."""
    intent = payload["intent"]
    return intent["id"], intent["strategyId"]


_last_time: tuple[str, int] = ("", 0)
"""The last envelope timestamp read and its epoch ms: the executor writes a pass' reports
at one time, so consecutive fills mostly share it (parsing it is ~0.5 us)."""


def fill(payload: dict[str, Any], timestamp: str) -> Fill:
    """The fill of an ``exec.step_filled`` payload; ``timestamp`` is the envelope's."""
    global _last_time
    text, at_ms = _last_time
    if timestamp != text:
        at_ms = int(datetime.fromisoformat(timestamp).timestamp() * 1000)
        _last_time = (timestamp, at_ms)
    return Fill(
        payload["stepId"],
        payload["assetIn"],
        Decimal(payload["amountIn"]),
        payload["assetOut"],
        Decimal(payload["amountOut"]),
        at_ms,
    )
