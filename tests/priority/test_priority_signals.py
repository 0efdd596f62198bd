"""The priority model's market and outcome signals."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from pipeline.models.market import PoolState
from pipeline.priority.signals import MarketVolatility, StrategyOutcomes


def pool(reserve1: int, seq: int) -> PoolState:
    return PoolState(
        pool_id="p1",
        venue="sim",
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=1_000,
        reserve1=reserve1,
        fee=3000,
        seq=seq,
    )


def test_volatility_is_the_spread_of_log_price_changes_per_version() -> None:
    vol = MarketVolatility()
    assert vol.of("WETH") == 0
    prices = [3_000_000, 3_030_000, 2_970_000, 3_000_000]
    for seq, reserve in enumerate(prices):
        vol.observe({"sim": [pool(reserve, seq)]})
        vol.observe({"sim": [pool(reserve, seq)]})  # the same version again: no new sample
    changes = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    assert vol.of("WETH") == pytest.approx(statistics.pstdev(changes))
    assert vol.of("USDC") == vol.of("WETH")
    assert vol.of("DAI") == 0


def test_fill_rate_counts_the_recent_outcomes_of_each_strategy() -> None:
    outcomes = StrategyOutcomes(window=4)
    assert outcomes.fill_rate("s") == 1.0  # nothing seen: not failing
    for ok in (False, False, True, True, True, True):
        outcomes.record("s", ok)
    assert outcomes.fill_rate("s") == 1.0  # the two failures fell out of the window
    outcomes.record("s", False)
    assert outcomes.fill_rate("s") == 0.75
    assert outcomes.fill_rate("t") == 1.0
