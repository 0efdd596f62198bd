"""What a market-data plugin provides: a source of pool-state updates for one venue type.

Registered through the ``sep_register_market_sources`` hook.  Each worker builds the source
for every enabled venue it has (``factory(venue)`` after ``venue.start()``) and publishes
its updates on ``topic``; every planner follows that topic (``pipeline.market.feed``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue


class MarketSource(Protocol):
    """Batches of pool states that changed (the first batch: every pool), until closed."""

    def updates(self) -> AsyncIterator[list[PoolState]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class MarketSourceSpec:
    name: str
    venue: str
    """The venue type whose pools it reports (a key of ``plugins.venues``)."""
    topic: str
    factory: Callable[[Venue], MarketSource]
    description: str = ""
