"""Sample intents against the topology's assets: for ``sep demo``, tests and benchmarks."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from pipeline.topology.models import Topology

# (type, subject, counter, amount range in subject units) that the default sim pools can fill.
SAMPLE_TRADES: tuple[tuple[str, str, str, tuple[str, str]], ...] = (
    ("DISPOSE", "WETH", "USDC", ("0.01", "2")),
    ("ACQUIRE", "WETH", "USDC", ("0.01", "2")),
    ("DISPOSE", "USDC", "WETH", ("10", "5000")),
    ("ACQUIRE", "USDC", "DAI", ("10", "5000")),
    ("DISPOSE", "WBTC", "USDC", ("0.001", "0.1")),
    ("DISPOSE", "DAI", "WETH", ("10", "3000")),  # two hops: DAI -> USDC -> WETH
)


def asset_json(topology: Topology, symbol: str) -> dict[str, Any]:
    return topology.asset(symbol).to_wire()


def submission(
    topology: Topology,
    kind: str,
    subject: str,
    counter: str,
    amount: Decimal | str,
    *,
    strategy_id: str = "demo",
    client_intent_id: str | None = None,
    max_slippage: str = "0.01",
    time_window_ms: int = 300_000,
    style: str = "ADAPTIVE",
    venues: list[str] | None = None,
) -> dict[str, Any]:
    """An ``IntentSubmission`` as JSON-ready dict (camelCase), the way a producer sends it."""
    body: dict[str, Any] = {
        "strategyId": strategy_id,
        "type": kind,
        "assets": [
            {"asset": asset_json(topology, subject), "amount": str(amount)},
            {"asset": asset_json(topology, counter)},
        ],
        "constraints": {
            "maxSlippage": max_slippage,
            "timeWindowMs": time_window_ms,
            "executionStyle": style,
        },
    }
    if client_intent_id is not None:
        body["clientIntentId"] = client_intent_id
    if venues is not None:
        body["constraints"]["allowedVenues"] = venues
    return body


def random_submission(
    topology: Topology,
    rng: random.Random,
    *,
    strategy_id: str,
    client_intent_id: str | None,
    venues: list[str] | None = None,
) -> dict[str, Any]:
    kind, subject, counter, (low, high) = rng.choice(SAMPLE_TRADES)
    lo, hi = Decimal(low), Decimal(high)
    amount = (lo + (hi - lo) * Decimal(rng.randint(0, 10_000)) / 10_000).quantize(lo)
    style = rng.choice(("AGGRESSIVE", "ADAPTIVE", "PASSIVE"))
    window = rng.choice((30_000, 120_000, 300_000, 900_000))
    return submission(
        topology,
        kind,
        subject,
        counter,
        amount,
        strategy_id=strategy_id,
        client_intent_id=client_intent_id,
        max_slippage="0.02",
        time_window_ms=window,
        style=style,
        venues=venues,
    )
