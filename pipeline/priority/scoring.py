"""An intent's score -> priority 1..10 -> lane, by the ONNX model or the transparent rule.

One scorer for the two stages that score: ingest (with lanes, to choose the lane topic an
intent waits in) and prioritise (the ``intent.prioritised`` it answers).  A batch is scored
in one call: ~15 µs for 500 intents with the model, ~40 µs for one alone.

    intents ─► feature rows (pipeline.priority.features) ─► model.score(matrix) ─► scores
            └─ or score_intent (the weighted sum) ───────────────────────────────┘
    scores ─► bucket ─► Priority(score, priority 1..10, lane)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

from pipeline.models.intent import ExecutionStyle, Intent
from pipeline.pricing import notional
from pipeline.priority.features import Signals, feature_row, matrix
from pipeline.priority.model import OnnxScorer
from pipeline.priority.signals import MarketVolatility, StrategyOutcomes
from pipeline.topology.models import PrioritySpec, Topology

MODELS_DIR = Path(__file__).resolve().parent / "models"
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
LANES = ((8, "fast"), (4, "normal"), (1, "bulk"))
"""The lowest priority of each lane when ``topology.yaml`` declares no ``lanes:``."""


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


def lane_name(priority: int, topology: Topology | None = None) -> str:
    """The lane of ``priority``: the topology's ``lanes:``, or ``LANES``."""
    if topology is not None and topology.lanes is not None:
        return topology.lanes.lane_of(priority).name
    return next(name for floor, name in LANES if priority >= floor)


_ZERO, _ONE, _TEN = Decimal(0), Decimal(1), Decimal(10)
_PLACES = Decimal("0.0001")


def bucket(score: Decimal, topology: Topology | None = None) -> Priority:
    """A score in [0, 1] -> priority 1..10 (tenths) and the lane of that priority."""
    score = min(max(score, _ZERO), _ONE).quantize(_PLACES)
    priority = 1 + int((score * _TEN).to_integral_value(rounding=ROUND_FLOOR))
    priority = min(max(priority, 1), 10)
    return Priority(score, priority, lane_name(priority, topology))


def in_lane(result: Priority, lane: str | None, topology: Topology) -> Priority:
    """``result`` kept within ``lane`` (the lane ingest queued the intent in, when the
    topology has lanes): the priority is clamped to the lane's range, the score kept.

    The window left shrinks between ingest and prioritise (and the batch, the queue-depth
    feature, differs), so the two scores can differ by a little; the lane an intent waited
    in is the one it is reported in."""
    lanes = topology.lanes
    if lane is None or lanes is None or lane == result.lane:
        return result
    try:
        low, high = lanes.lane(lane).priorities
    except KeyError:
        return result  # queued under a lane the topology no longer has: scored afresh
    return Priority(result.score, min(max(result.priority, low), high), lane)


def score_intent(intent: Intent, topology: Topology) -> Priority:
    """The transparent rule: urgency, style and size, weighted."""
    value = notional(intent, topology) or Decimal(0)
    size = min(value / topology.risk.max_notional, Decimal(1))
    return bucket(
        WEIGHT_URGENCY * urgency(intent.constraints.time_window_ms)
        + WEIGHT_STYLE * STYLE_SCORE[intent.constraints.execution_style]
        + WEIGHT_SIZE * size,
        topology,
    )


def model_path(spec: PrioritySpec) -> Path:
    path = Path(spec.model)
    return path if path.is_absolute() else MODELS_DIR / path


class IntentScorer:
    """``topology.yaml``'s ``priority.scorer`` over a batch of intents."""

    def __init__(self, topology: Topology, outcomes: StrategyOutcomes | None = None) -> None:
        spec = topology.priority
        self._topology = topology
        self.model = OnnxScorer(model_path(spec)) if spec.scorer == "model" else None
        self.volatility = MarketVolatility()
        self._outcomes = outcomes if outcomes is not None else StrategyOutcomes()

    @property
    def name(self) -> str:
        return "rule" if self.model is None else "model"

    @property
    def version(self) -> str:
        return RULE_VERSION if self.model is None else self.model.version

    def score(self, intents: Sequence[Intent], now: int) -> list[Priority]:
        """Every intent of the batch, in order (the model: one call for the batch)."""
        topology = self._topology
        if self.model is None:
            return [score_intent(intent, topology) for intent in intents]
        if not intents:
            return []
        # A batch has a few assets and strategies: their signals are looked up once each
        # (the volatility is a standard deviation over every pool of the asset).
        # The signals of an (asset, strategy) pair are one object for the batch (a frozen
        # dataclass made per intent was ~1 us of each).
        volatility: dict[str, float] = {}
        fill_rate: dict[str, float] = {}
        signals_of: dict[tuple[str, str], Signals] = {}
        rows = []
        for intent in intents:
            asset = intent.subject.asset.symbol
            strategy = intent.strategy_id
            signals = signals_of.get((asset, strategy))
            if signals is None:
                if asset not in volatility:
                    volatility[asset] = self.volatility.of(asset)
                if strategy not in fill_rate:
                    fill_rate[strategy] = self._outcomes.fill_rate(strategy)
                signals = signals_of[(asset, strategy)] = Signals(
                    volatility=volatility[asset],
                    fill_rate=fill_rate[strategy],
                    queue_depth=len(intents),
                )
            rows.append(feature_row(intent, notional(intent, topology), now, signals))
        scores = self.model.score(matrix(rows))
        return [bucket(Decimal(repr(float(score))), topology) for score in scores]
