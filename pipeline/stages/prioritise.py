"""Prioritise: a score -> priority 1..10 and a lane, by the ONNX priority model or the
transparent rule.

Record shapes:
    in   sep.intents.validated    Event(intent.accepted)   (others are ignored)
    out  sep.intents.prioritised  Event(intent.prioritised{intent, priority, lane, score,
                                  scorer, scorer_version})
                                  | Event(intent.expired{stage: prioritise, reason}) when the
                                  window left cannot hold planning and sending
                                  (``priority.min_time_left_ms``)

``topology.yaml``'s ``priority.scorer`` chooses the scorer:

    model  the ONNX model (``pipeline.priority``): a batch's intents scored in one call, from
           features the stage has (type, notional, window left, style, slippage bound, the
           asset's recent volatility from the pools it follows, the strategy's recent fill
           rate from this worker's executions, the batch size as the queue's depth)
    rule   a weighted sum a person can check by hand (``score_intent``): urgency from the
           time window, the execution style, and size against the risk limit

Both bucket the score the same way (``bucket``).  A batch goes out highest priority first.

The answer is remembered per intent (``sep-prioritise-decisions``, see ``decisions.py``) and
re-emitted byte for byte on a redelivery: it depends on the clock (the window left, early
expiry) and on signals that move, and a redelivery after a rebalance must not expire an
intent that was prioritised, planned and executed the first time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

from pipeline.models.base import WireModel
from pipeline.models.events import (
    Event,
    IntentAccepted,
    IntentExpired,
    IntentPrioritised,
    make_event,
)
from pipeline.models.intent import ExecutionStyle, Intent
from pipeline.pricing import notional
from pipeline.priority.features import Signals, feature_row, matrix
from pipeline.priority.model import OnnxScorer
from pipeline.priority.signals import MarketVolatility
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.decisions import Decisions
from pipeline.stages.table_names import PRIORITISE_DECISIONS
from pipeline.topology.models import PrioritySpec, Topology

log = logging.getLogger(__name__)
MODELS_DIR = Path(__file__).resolve().parent.parent / "priority" / "models"
RULE_VERSION = "rule-1"
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


def bucket(score: Decimal) -> Priority:
    """A score in [0, 1] -> priority 1..10 (tenths) and the lane of that priority."""
    score = min(max(score, Decimal(0)), Decimal(1)).quantize(Decimal("0.0001"))
    priority = 1 + int((score * 10).to_integral_value(rounding=ROUND_FLOOR))
    priority = min(max(priority, 1), 10)
    lane = next(name for floor, name in LANES if priority >= floor)
    return Priority(score, priority, lane)


def score_intent(intent: Intent, topology: Topology) -> Priority:
    value = notional(intent, topology) or Decimal(0)
    size = min(value / topology.risk.max_notional, Decimal(1))
    return bucket(
        WEIGHT_URGENCY * urgency(intent.constraints.time_window_ms)
        + WEIGHT_STYLE * STYLE_SCORE[intent.constraints.execution_style]
        + WEIGHT_SIZE * size
    )


def model_path(spec: PrioritySpec) -> Path:
    path = Path(spec.model)
    return path if path.is_absolute() else MODELS_DIR / path


def _answer(event: Event, topic: str, payload: WireModel, topology: Topology, now: int) -> Output:
    """Prioritise's one event for an ``intent.accepted``: the next seq, caused by it."""
    intent = event.payload_as(IntentAccepted).intent
    out = make_event(
        topic,
        payload,
        correlation_id=intent.id,
        seq=event.seq + 1,
        causation_id=event.event_id,
        at_ms=now,
        id_ms=intent.created_at_ms or now,
    )
    return Output.of_event(topology.stage("prioritise").events_topic, out)


def prioritised_output(
    event: Event, result: Priority, scorer: str, version: str, topology: Topology, now: int
) -> Output:
    """The ``intent.prioritised`` output of one ``intent.accepted``."""
    payload = IntentPrioritised(
        intent=event.payload_as(IntentAccepted).intent,
        priority=result.priority,
        lane=result.lane,
        score=result.score,
        scorer=scorer,
        scorer_version=version,
    )
    return _answer(event, "intent.prioritised", payload, topology, now)


def prioritise_event(event: Event, topology: Topology, now: int) -> tuple[int, Output]:
    """One ``intent.accepted`` scored by the rule; its priority and output."""
    result = score_intent(event.payload_as(IntentAccepted).intent, topology)
    return result.priority, prioritised_output(event, result, "rule", RULE_VERSION, topology, now)


def expired_early(event: Event, topology: Topology, now: int) -> Output | None:
    """``intent.expired`` if less than ``priority.min_time_left_ms`` of the window is left."""
    intent = event.payload_as(IntentAccepted).intent
    deadline, least = intent.deadline_ms, topology.priority.min_time_left_ms
    if deadline is None or least == 0 or deadline - now >= least:
        return None
    payload = IntentExpired(
        deadline_ms=deadline,
        observed_at_ms=now,
        stage="prioritise",
        reason=(
            f"{max(deadline - now, 0)} ms of the window left at prioritise, under the "
            f"{least} ms planning and sending need (priority.min_time_left_ms)"
        ),
    )
    return _answer(event, "intent.expired", payload, topology, now)


class PrioritiseStage:
    name = "prioritise"

    def __init__(self, context: StageContext) -> None:
        self._context = context
        spec = context.topology.priority
        self._model = OnnxScorer(model_path(spec)) if spec.scorer == "model" else None
        self._volatility = MarketVolatility()
        self._decisions = Decisions(
            context.table(
                PRIORITISE_DECISIONS, "intent id -> intent.prioritised or intent.expired, as given"
            ),
            ttl_s=context.settings.decision_ttl_s,
        )

    @property
    def scorer(self) -> str:
        return "rule" if self._model is None else f"model {self._model.version}"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        now, topology = self._context.clock(), self._context.topology
        pairs = [
            (record, event)
            for record in records
            if (event := event_of(record)).topic == "intent.accepted"
        ]
        decided: dict[str, tuple[int, list[Output]]] = {}
        live: list[Event] = []
        for event in self._decisions.unanswered(e for _, e in pairs):
            if (expired := expired_early(event, topology, now)) is not None:
                decided[event.correlation_id] = (11, [expired])  # said first: it is final
            else:
                live.append(event)
        ranked = (
            self._scored(live, now)
            if self._model is not None
            else [prioritise_event(e, topology, now) for e in live]
        )
        for event, (priority, output) in zip(live, ranked, strict=True):
            decided[event.correlation_id] = (priority, [output])
        # Within a micro-batch, higher priority goes out first (stable for equal ones); a
        # redelivered intent's remembered answer first of all (it has waited longest).
        pairs.sort(key=lambda pair: -decided.get(pair[1].correlation_id, (12, []))[0])
        await self._decisions.answer(pairs, lambda e: decided[e.correlation_id][1], emit)

    def _scored(self, events: Sequence[Event], now: int) -> list[tuple[int, Output]]:
        """The batch scored by the model in one call."""
        assert self._model is not None
        if not events:
            return []
        context, topology = self._context, self._context.topology
        if context.market is not None:
            self._volatility.observe(context.market.pools())
        intents = [e.payload_as(IntentAccepted).intent for e in events]
        rows = [
            feature_row(
                intent,
                notional(intent, topology),
                now,
                Signals(
                    volatility=self._volatility.of(intent.subject.asset.symbol),
                    fill_rate=context.outcomes.fill_rate(intent.strategy_id),
                    queue_depth=len(events),
                ),
            )
            for intent in intents
        ]
        scores = self._model.score(matrix(rows))
        version = self._model.version
        return [
            (
                (result := bucket(Decimal(repr(float(score))))).priority,
                prioritised_output(event, result, "model", version, topology, now),
            )
            for event, score in zip(events, scores, strict=True)
        ]


def build(context: StageContext) -> PrioritiseStage:
    return PrioritiseStage(context)
