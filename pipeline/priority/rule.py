"""The urgency rule the priority model is trained on, written in feature space
(``pipeline.priority.features``) so that labels can be made for any feature vector.

    u        urgency of the window left: 1 at 10 s or less, 0 at an hour or more, linear in
             log-time between (the transparent scorer is linear in time)
    style    aggressive 1, adaptive 0.5, passive 0
    size     notional up to 1 M of the quote asset, in log scale
    market   volatility (2 % per update counts as fully volatile), weighed up when the intent's
             slippage bound is tight: a tight bound on a moving market is lost by waiting
    failing  1 - the strategy's recent fill rate: a strategy whose intents fail gets attention
    crowd    u x queue depth: a deep queue makes short windows more urgent still

    score = 0.45 u + 0.15 style + 0.10 size + 0.10 market + 0.10 failing + 0.10 crowd

Each term is in [0, 1] and the weights sum to 1, so the score is in [0, 1].  The model learns
this from generated samples (``train``); a person can check any score by hand from it.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

W_URGENT: Final = math.log10(10_000) / 7  # window_left feature of 10 s
W_RELAXED: Final = math.log10(3_600_000) / 7  # ... of an hour
SIZE_FULL: Final = math.log10(1 + 1_000_000) / 7
VOLATILE: Final = 0.02
TIGHT: Final = 0.02


def urgency_rule(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The rule's score for each row of ``x`` (shape (n, 10)), in [0, 1]."""
    f = x.astype(np.float64)
    u = np.clip((W_RELAXED - f[:, 2]) / (W_RELAXED - W_URGENT), 0, 1)
    style = f[:, 3] + 0.5 * f[:, 4]
    size = np.clip(f[:, 1] / SIZE_FULL, 0, 1)
    tight = np.clip((TIGHT - f[:, 6]) / TIGHT, 0, 1)
    market = np.clip(f[:, 7] / VOLATILE, 0, 1) * (0.5 + 0.5 * tight)
    failing = 1 - np.clip(f[:, 8], 0, 1)
    crowd = u * np.clip(f[:, 9], 0, 1)
    score = 0.45 * u + 0.15 * style + 0.10 * size + 0.10 * market + 0.10 * failing + 0.10 * crowd
    return np.asarray(np.clip(score, 0, 1))
