"""What the priority model sees of an intent: ten numbers, all available at the stage.

    0  acquire          1 for ACQUIRE, 0 for DISPOSE
    1  size             log10(1 + notional in the risk quote asset) / 7   (10 M -> 1)
    2  window_left      log10(max(window left, 1 ms)) / 7                 (~2.8 h -> 1)
    3  aggressive       execution style, one-hot
    4  adaptive
    5  passive
    6  max_slippage     as a fraction (0.005 = 0.5 %)
    7  volatility       the asset's recent volatility (stdev of log price changes over the
                        last market updates; 0 when no market data is followed)
    8  fill_rate        the strategy's recent share of completed executions (1 when unknown)
    9  queue_depth      log10(1 + intents in the stage's batch) / 4: how much is waiting

The scales keep every feature within about [0, 1], so one small network fits them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

from pipeline.models.intent import ExecutionStyle, Intent, IntentType

FEATURES: Final = (
    "acquire",
    "size",
    "window_left",
    "aggressive",
    "adaptive",
    "passive",
    "max_slippage",
    "volatility",
    "fill_rate",
    "queue_depth",
)
WIDTH: Final = len(FEATURES)


@dataclass(frozen=True)
class Signals:
    """What the stage knows beside the intent (market and recent outcomes)."""

    volatility: float = 0.0
    fill_rate: float = 1.0
    queue_depth: int = 0


def feature_row(
    intent: Intent, notional: Decimal | None, now_ms: int, signals: Signals
) -> list[float]:
    """The intent's features in ``FEATURES`` order."""
    deadline = intent.deadline_ms
    left = intent.constraints.time_window_ms if deadline is None else deadline - now_ms
    style = intent.constraints.execution_style
    return [
        1.0 if intent.type is IntentType.ACQUIRE else 0.0,
        # Ingest scores intents validate has not checked yet: a negative amount is not an
        # error here (validate rejects it), it is size zero.
        math.log10(1 + max(float(notional or 0), 0.0)) / 7,
        math.log10(max(left, 1)) / 7,
        1.0 if style is ExecutionStyle.AGGRESSIVE else 0.0,
        1.0 if style is ExecutionStyle.ADAPTIVE else 0.0,
        1.0 if style is ExecutionStyle.PASSIVE else 0.0,
        float(intent.constraints.max_slippage),
        signals.volatility,
        signals.fill_rate,
        math.log10(1 + signals.queue_depth) / 4,
    ]


def matrix(rows: list[list[float]]) -> npt.NDArray[np.float32]:
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), WIDTH)
