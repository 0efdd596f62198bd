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

from pipeline.models.base import WireModel, built
from pipeline.models.events import (
    Event,
    IntentAccepted,
    IntentExpired,
    IntentPrioritised,
    make_event,
)
from pipeline.priority.scoring import (
    LANES,
    RULE_VERSION,
    IntentScorer,
    Priority,
    bucket,
    in_lane,
    model_path,
    score_intent,
    urgency,
)
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.decisions import Decisions
from pipeline.stages.table_names import PRIORITISE_DECISIONS
from pipeline.topology.models import Topology

__all__ = [
    "LANES",
    "RULE_VERSION",
    "PrioritiseStage",
    "Priority",
    "bucket",
    "build",
    "model_path",
    "prioritise_event",
    "score_intent",
    "urgency",
]
log = logging.getLogger(__name__)


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
    return Output.of_event(_events_topic(topology), out)


_TOPICS: dict[int, tuple[Topology, str]] = {}


def _events_topic(topology: Topology) -> str:
    """The stage's events topic, looked up once per topology (``Topology.stage`` searches
    the stages' list; asked once per intent).  The topology is kept with it, so its id is
    not reused while the entry lives."""
    found = _TOPICS.get(id(topology))
    if found is None or found[0] is not topology:
        if len(_TOPICS) > 64:
            _TOPICS.clear()
        found = _TOPICS[id(topology)] = (topology, topology.stage("prioritise").events_topic)
    return found[1]


def prioritised_output(
    event: Event, result: Priority, scorer: str, version: str, topology: Topology, now: int
) -> Output:
    """The ``intent.prioritised`` output of one ``intent.accepted``."""
    # Built, not validated (``built``): the priority is bucketed into 1..10 and kept within
    # a lane's range (itself within 1..10), the score quantized to 4 places in [0, 1].
    payload = built(
        IntentPrioritised,
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
    accepted = event.payload_as(IntentAccepted)
    result = in_lane(score_intent(accepted.intent, topology), accepted.lane, topology)
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
        self._scorer = IntentScorer(context.topology, context.outcomes)
        self._decisions = Decisions(
            context.table(
                PRIORITISE_DECISIONS, "intent id -> intent.prioritised or intent.expired, as given"
            ),
            ttl_s=context.settings.decision_ttl_s,
        )

    @property
    def scorer(self) -> str:
        model = self._scorer.model
        return "rule" if model is None else f"model {model.version}"

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
            if self._scorer.model is not None
            else [prioritise_event(e, topology, now) for e in live]
        )
        for event, (priority, output) in zip(live, ranked, strict=True):
            decided[event.correlation_id] = (priority, [output])
        # Within a micro-batch, higher priority goes out first (stable for equal ones); a
        # redelivered intent's remembered answer first of all (it has waited longest).
        pairs.sort(key=lambda pair: -decided.get(pair[1].correlation_id, (12, []))[0])
        await self._decisions.answer(pairs, lambda e: decided[e.correlation_id][1], emit)

    def _scored(self, events: Sequence[Event], now: int) -> list[tuple[int, Output]]:
        """The batch scored by the model in one call (each kept in the lane ingest chose)."""
        if not events:
            return []
        context, topology, scorer = self._context, self._context.topology, self._scorer
        if context.market is not None:
            scorer.volatility.observe(context.market.pools())
        accepted = [e.payload_as(IntentAccepted) for e in events]
        results = scorer.score([a.intent for a in accepted], now)
        version = scorer.version
        return [
            (
                (kept := in_lane(result, a.lane, topology)).priority,
                prioritised_output(event, kept, "model", version, topology, now),
            )
            for event, a, result in zip(events, accepted, results, strict=True)
        ]


def build(context: StageContext) -> PrioritiseStage:
    return PrioritiseStage(context)
