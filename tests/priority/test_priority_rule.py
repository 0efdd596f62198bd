"""The urgency rule the model learns, checked by hand, and the features it reads."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from pipeline.models.intent import Intent
from pipeline.priority.features import FEATURES, Signals, feature_row, matrix
from pipeline.priority.rule import urgency_rule
from pipeline.samples import submission
from pipeline.topology import load_topology

TOPOLOGY = load_topology()
T0 = 1_700_000_000_000


def intent(window: int, style: str, kind: str = "ACQUIRE", slippage: str = "0.005") -> Intent:
    data = submission(TOPOLOGY, kind, "WETH", "USDC", "1", time_window_ms=window, style=style)
    data["constraints"]["maxSlippage"] = slippage
    return Intent.model_validate({**data, "id": "intent-x", "createdAtMs": T0})


def test_features_of_an_intent() -> None:
    row = feature_row(
        intent(60_000, "AGGRESSIVE"),
        Decimal(3000),
        T0 + 50_000,  # 10 s of the window left
        Signals(volatility=0.01, fill_rate=0.75, queue_depth=99),
    )
    assert dict(zip(FEATURES, row, strict=True)) == pytest.approx(
        {
            "acquire": 1.0,
            "size": math.log10(3001) / 7,
            "window_left": 4 / 7,
            "aggressive": 1.0,
            "adaptive": 0.0,
            "passive": 0.0,
            "max_slippage": 0.005,
            "volatility": 0.01,
            "fill_rate": 0.75,
            "queue_depth": 0.5,
        }
    )


def rule_of(**features: float) -> float:
    row = [features.get(name, 0.0) for name in FEATURES]
    return float(urgency_rule(matrix([row]))[0])


def test_the_rule_by_hand() -> None:
    # 10 s left (u = 1), aggressive, nothing else: 0.45 + 0.15 + failing 0.10 (fill rate 0).
    assert rule_of(window_left=4 / 7, aggressive=1) == pytest.approx(0.70)
    # ... with a fill rate of 1 and a full queue: 0.45 + 0.15 + 0.10 (crowd u x 1).
    assert rule_of(window_left=4 / 7, aggressive=1, fill_rate=1, queue_depth=1) == pytest.approx(
        0.70
    )
    # An hour left, passive, fills fine, calm market: nothing is urgent.
    assert rule_of(window_left=math.log10(3_600_000) / 7, passive=1, fill_rate=1) == pytest.approx(
        0, abs=1e-6
    )
    # Volatility at 2 % with a slippage bound of 0 (fully tight): the market term is 0.10.
    assert rule_of(
        window_left=math.log10(3_600_000) / 7, fill_rate=1, volatility=0.02
    ) == pytest.approx(0.10)
    # ... with a loose bound (2 % or more) half of it.
    assert rule_of(
        window_left=math.log10(3_600_000) / 7, fill_rate=1, volatility=0.02, max_slippage=0.05
    ) == pytest.approx(0.05)


def test_the_rule_stays_within_zero_and_one() -> None:
    x = np.random.default_rng(3).uniform(-1, 2, (5_000, len(FEATURES))).astype(np.float32)
    scores = urgency_rule(x)
    assert scores.min() >= 0
    assert scores.max() <= 1
