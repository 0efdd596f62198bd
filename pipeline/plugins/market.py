"""What a market-data plugin provides: a source of updates for one venue type.

Registered through the ``sep_register_market_sources`` hook.  Each worker builds the source
for every enabled venue it has (``factory(venue)`` after ``venue.start()``) and publishes
its updates on ``topic`` (``pipeline.market.publisher``).

A source declares what it publishes (``MarketSourceSpec.data``):

    POOLS  batches of ``PoolState``s, keyed ``venue/pool_id`` by the publisher; every planner
           follows the topic (``pipeline.market.feed``) and routes on those pools instead of
           asking the venue (``MarketPublisher.venues``).
    BOOKS  batches of ``MarketRecord``s that carry their own key and value (a venue's L2 book
           snapshots and sequenced deltas, ``pipeline.models.market.BookMessage``); planners
           follow them with ``pipeline.market.books.BookFeed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue


@dataclass(frozen=True, slots=True)
class MarketRecord:
    """One record as it goes on the topic: the source chose its key (its ordering unit)."""

    key: bytes
    value: bytes


class MarketSource(Protocol):
    """Batches of what changed (the first batch: everything), until closed."""

    def updates(self) -> AsyncIterator[Sequence[PoolState | MarketRecord]]: ...

    def close(self) -> None: ...


class MarketData(StrEnum):
    POOLS = "pools"
    """``PoolState``s: the venue's pools for the router."""
    BOOKS = "books"
    """``MarketRecord``s of L2 books: not pools, the venue is still asked for its pools."""


@dataclass(frozen=True)
class MarketSourceSpec:
    name: str
    venue: str
    """The venue type whose market data it reports (a key of ``plugins.venues``)."""
    topic: str
    factory: Callable[[Venue], MarketSource]
    description: str = ""
    data: MarketData = MarketData.POOLS
    """What its updates carry (see the module docstring)."""
    routing: bool = True
    """POOLS only: planners route on the published states instead of asking the venue.
    ``False`` for a venue whose own answer is exact and cheap (the sim venue's local ledger),
    which publishes for the strategy runner only."""
