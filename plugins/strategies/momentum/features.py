"""The momentum model's features, from a series of bar closes (oldest first).

One function, used by the training script and by the strategy, so the model never sees
features computed another way than those it was trained on:

    closes[-1 - w] .. closes[-1]  -->  [ret_1, ret_5, ret_15, ret_30, vol_30, rsi_14]

    ret_w    log return over the last w bars
    vol_30   standard deviation of the last 30 one-bar log returns
    rsi_14   Wilder's relative strength index over 14 bars, scaled to 0..1 (0.5: neutral)

Floats, not Decimals: these are a model's inputs (float32 in the ONNX graph), never money.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

RETURN_WINDOWS = (1, 5, 15, 30)
VOL_WINDOW = 30
RSI_WINDOW = 14
FEATURE_NAMES = (*(f"ret_{w}" for w in RETURN_WINDOWS), f"vol_{VOL_WINDOW}", f"rsi_{RSI_WINDOW}")
BARS_NEEDED = max(*RETURN_WINDOWS, VOL_WINDOW, RSI_WINDOW) + 1
"""Closes needed for one feature vector (31: 30 returns)."""


def features(closes: Sequence[float]) -> list[float] | None:
    """The feature vector at the last close; ``None`` with fewer than ``BARS_NEEDED`` closes
    (or a close that is not a positive finite number)."""
    if len(closes) < BARS_NEEDED:
        return None
    window = closes[-BARS_NEEDED:]
    if not all(c > 0 and math.isfinite(c) for c in window):
        return None
    logs = [math.log(c) for c in window]
    last = logs[-1]
    returns = [last - logs[-1 - w] for w in RETURN_WINDOWS]
    steps = [b - a for a, b in zip(logs[-VOL_WINDOW - 1 : -1], logs[-VOL_WINDOW:], strict=True)]
    mean = sum(steps) / len(steps)
    vol = math.sqrt(sum((s - mean) ** 2 for s in steps) / len(steps))
    return [*returns, vol, rsi(steps[-RSI_WINDOW:])]


def rsi(steps: Sequence[float]) -> float:
    """RSI of one-bar changes, 0..1: average gain / (average gain + average loss)."""
    gains = sum(s for s in steps if s > 0)
    losses = -sum(s for s in steps if s < 0)
    if gains + losses == 0:
        return 0.5  # a flat market is neither overbought nor oversold
    return gains / (gains + losses)
