"""Prioritise: a transparent score -> priority 1..10 and a lane.

Record shapes:
    in   sep.intents.validated    Event(intent.accepted)   (others are ignored)
    out  sep.intents.prioritised  Event(intent.prioritised{intent, priority, lane, score})

The score is a weighted sum a person can check by hand (``score_intent``): urgency from the
time window, the execution style, and size against the risk limit.  A later issue replaces
the function with an ONNX model behind the same contract (same inputs, same event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from pipeline.models.events import Event, IntentAccepted, IntentPrioritised, make_event
from pipeline.models.intent import ExecutionStyle, Intent
from pipeline.pricing import notional
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.topology.models import Topology

URGENT_WINDOW_MS = 10_000  # a window this short or shorter is maximally urgent
RELAXED_WINDOW_MS = 3_600_000  # an hour or more is not urgent at all
WEIGHT_URGENCY = Decimal("0.6")
WEIGHT_STYLE = Decimal("0.25")
WEIGHT_SIZE = Decimal("0.15")
STYLE_SCORE = {
    ExecutionStyle.AGGRESSIVE: Decimal(1),
    ExecutionStyle.ADAPTIVE: Decimal("0.5"),
    ExecutionStyle.PASSIVE: Decimal(0),
}
LANES = ((8, "fast"), (4, "normal"), (1, "bulk"))  # lowest priority of each lane


@dataclass(frozen=True)
class Priority:
    score: Decimal
    priority: int
    lane: str


def urgency(time_window_ms: int) -> Decimal:
    """1 for a window of 10 s or less, 0 for an hour or more, linear in between."""
    span = Decimal(RELAXED_WINDOW_MS - URGENT_WINDOW_MS)
    clipped = min(max(time_window_ms, URGENT_WINDOW_MS), RELAXED_WINDOW_MS)
    return 1 - Decimal(clipped - URGENT_WINDOW_MS) / span


def score_intent(intent: Intent, topology: Topology) -> Priority:
    value = notional(intent, topology) or Decimal(0)
    size = min(value / topology.risk.max_notional, Decimal(1))
    score = (
        WEIGHT_URGENCY * urgency(intent.constraints.time_window_ms)
        + WEIGHT_STYLE * STYLE_SCORE[intent.constraints.execution_style]
        + WEIGHT_SIZE * size
    )
    score = score.quantize(Decimal("0.0001"))
    priority = 1 + int((score * 10).to_integral_value(rounding=ROUND_FLOOR))
    priority = min(max(priority, 1), 10)
    lane = next(name for floor, name in LANES if priority >= floor)
    return Priority(score, priority, lane)


def prioritise_event(event: Event, topology: Topology, now: int) -> tuple[int, Output]:
    """One ``intent.accepted`` in; its priority and the ``intent.prioritised`` output out."""
    intent = event.payload_as(IntentAccepted).intent
    result = score_intent(intent, topology)
    out = make_event(
        "intent.prioritised",
        IntentPrioritised(
            intent=intent, priority=result.priority, lane=result.lane, score=result.score
        ),
        correlation_id=intent.id,
        seq=event.seq + 1,
        causation_id=event.event_id,
        at_ms=now,
        id_ms=intent.created_at_ms or now,
    )
    return result.priority, Output.of_event(topology.stage("prioritise").events_topic, out)


class PrioritiseStage:
    name = "prioritise"

    def __init__(self, context: StageContext) -> None:
        self._context = context

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        now = self._context.clock()
        accepted = [e for e in map(event_of, records) if e.topic == "intent.accepted"]
        ranked = [prioritise_event(e, self._context.topology, now) for e in accepted]
        # Within a micro-batch, higher priority goes out first (stable for equal ones).
        ranked.sort(key=lambda pair: -pair[0])
        for _, output in ranked:
            await emit(output)


def build(context: StageContext) -> PrioritiseStage:
    return PrioritiseStage(context)
