"""The priority model's market and outcome features, kept per worker.

``MarketVolatility`` samples the pools the worker follows (``StageContext.market``) each time
a pool's state moves (its ``version`` changes) and keeps the last ``WINDOW`` log changes of
each pool's price; an asset's volatility is the largest standard deviation among the pools
that trade it.  The price is the raw reserve ratio: the decimals cancel out of a log change.

``StrategyOutcomes`` counts the last ``WINDOW`` executions per strategy that this worker ran
(execute reports each outcome): the share that completed is the strategy's fill rate.

Both are per worker and see what this worker sees (its partitions' executions; the pools
every worker follows): a deliberate simplification, enough to tell a calm market from a
moving one and a strategy that fills from one that fails.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Final

from pipeline.models.market import PoolState

WINDOW: Final = 30


class MarketVolatility:
    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._last: dict[tuple[str, str], tuple[int, float]] = {}
        self._changes: dict[tuple[str, str], deque[float]] = {}
        self._assets: dict[tuple[str, str], tuple[str, str]] = {}

    def observe(self, pools: Mapping[str, Sequence[PoolState]]) -> None:
        for venue, states in pools.items():
            for state in states:
                if state.reserve0 <= 0 or state.reserve1 <= 0:
                    continue
                key = (venue, state.pool_id)
                version = state.version if state.version is not None else -1
                price = math.log(state.reserve1) - math.log(state.reserve0)
                last = self._last.get(key)
                self._assets[key] = (state.token0, state.token1)
                if last is not None and last[0] == version and version >= 0:
                    continue
                if last is not None and price != last[1]:
                    self._changes.setdefault(key, deque(maxlen=self._window)).append(
                        price - last[1]
                    )
                self._last[key] = (version, price)

    def of(self, asset: str) -> float:
        """The asset's recent volatility (0 with fewer than two changes seen)."""
        spread = [
            statistics.pstdev(changes)
            for key, changes in self._changes.items()
            if asset in self._assets[key] and len(changes) >= 2
        ]
        return max(spread, default=0.0)


class StrategyOutcomes:
    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._outcomes: dict[str, deque[bool]] = {}

    def record(self, strategy_id: str, completed: bool) -> None:
        self._outcomes.setdefault(strategy_id, deque(maxlen=self._window)).append(completed)

    def fill_rate(self, strategy_id: str) -> float:
        """The share of the strategy's recent executions that completed (1 if none seen)."""
        outcomes = self._outcomes.get(strategy_id)
        if not outcomes:
            return 1.0
        return sum(outcomes) / len(outcomes)
