"""Every venue's L2 books as replicas, and one aggregated book per market across venues.

Shapes, from the topic to the planner:

    BookSnapshot | BookDelta  (human Decimals, per venue and market_id)
      -> BookReplica per (venue, market_id)         apply(): incremental, dict updates
      -> VenueBook per (venue, market_id)           ops.Book in the pair's integer units, built
                                                    again only after its replica changed
      -> AggregatedBook per pair (base, quote)      ops.aggregate_books over the pair's venues,
                                                    again only after one of them changed, and
                                                    only when read (``BookBoard.book``)

A market is the pair ``(base, quote)``, whatever each venue calls it (``market_id``).

The aggregated book is the **taker's all-in view**: each venue's ask is the price a buyer
pays per unit *with that venue's taker fee*, ``price * (1 + fee)`` rounded up, and each bid
what a seller receives, ``price * (1 - fee)`` rounded down.  Sweeping it (``ops.sweep``) then
takes the cheapest units after fees across venues, which sweeping raw prices would not (a
venue 0.01 % cheaper but 0.05 % dearer in fees would be taken first).  The fees are folded in,
so the ``ops.Book``s carry fee 0 and a sweep's ``notional`` is what is paid or received, fees
included; each venue's raw levels (on its own tick grid) stay in its ``VenueBook``.

Units, per pair: a size is in base units of the base asset (``10**-decimals``); a price is a
count of ``price_unit = finest tick among the pair's venues / 10**6``, so a fee in hundredths
of a basis point folds in exactly on nested tick grids.

Why lazily re-aggregated on read rather than merged level by level: the Rust operator merges
whole books (``aggregate_books``: 1.3 us for two books of 40 and 20 levels).  A delta costs
2.3 us to apply; the first read after it converts the changed venue's book (~75 us for 40
levels, Decimals to ints) and merges; an unchanged pair costs a dict look-up (0.2 us).  So
planning reads never rebuild what has not changed (figures: ``tests/market/test_board.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from types import ModuleType
from typing import Any

from pipeline import ops
from pipeline.market.replica import Applied, BookReplica
from pipeline.models.market import BookDelta, BookSnapshot

log = logging.getLogger(__name__)

PRICE_SUBTICKS = 10**6
"""Price units per tick of the finest venue of a pair (fees are in 10**-6 of a price)."""
FEE_DENOMINATOR = Decimal(1_000_000)

Pair = tuple[str, str]
"""``(base, quote)``: a market across venues."""


@dataclass(frozen=True)
class VenueMarket:
    """What a venue's snapshot says about a market besides its levels."""

    venue: str
    market_id: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    taker_fee: int
    """Hundredths of a basis point."""

    @classmethod
    def of(cls, snapshot: BookSnapshot) -> VenueMarket:
        return cls(
            snapshot.venue,
            snapshot.market_id,
            snapshot.base,
            snapshot.quote,
            snapshot.tick_size,
            snapshot.lot_size,
            snapshot.taker_fee,
        )


@dataclass(frozen=True)
class VenueBook:
    """One venue's book of a pair in the pair's units, all-in (fee folded into the prices)."""

    market: VenueMarket
    seq: int
    price_unit: Decimal
    book: Any
    """``ops.Book`` (or its twin): all-in integer prices, sizes in base units, fee 0."""
    raw_asks: Mapping[int, Decimal]
    """All-in ask price (integer) -> the venue's own price (on its tick grid)."""
    raw_bids: Mapping[int, Decimal]


@dataclass
class AggregatedBook:
    """One pair's books across venues (see the module docstring for units and fees)."""

    base: str
    quote: str
    price_unit: Decimal
    size_decimals: int
    book: Any
    """``ops.ConsolidatedBook`` of every venue's all-in book."""
    venues: dict[str, VenueBook]
    ops: ModuleType = field(repr=False)
    _singles: dict[str, Any] = field(default_factory=dict, repr=False)

    def single(self, venue: str) -> Any:
        """The consolidated book of ``venue`` alone (made once, on first use)."""
        found = self._singles.get(venue)
        if found is None:
            found = self._singles[venue] = self.ops.aggregate_books([self.venues[venue].book])
        return found

    def price(self, units: int) -> Decimal:
        return units * self.price_unit

    def size(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.size_decimals)


def _all_in(price: Decimal, fee: int, unit: Decimal, ask: bool) -> int:
    if ask:
        return int(
            (price * (FEE_DENOMINATOR + fee) / FEE_DENOMINATOR / unit).to_integral_value(
                ROUND_CEILING
            )
        )
    return int(
        (price * (FEE_DENOMINATOR - fee) / FEE_DENOMINATOR / unit).to_integral_value(ROUND_FLOOR)
    )


def venue_book(
    market: VenueMarket,
    replica: BookReplica,
    price_unit: Decimal,
    size_decimals: int,
    ops_module: ModuleType,
) -> VenueBook:
    """``replica`` in the pair's units, all-in.  Raises ``ops.InvalidBookError`` for a book the
    operator refuses (a price beyond 2**64 units, a crossed book)."""
    bids, asks = replica.levels()
    raw_bids = {_all_in(p, market.taker_fee, price_unit, False): p for p, _s in bids}
    raw_asks = {_all_in(p, market.taker_fee, price_unit, True): p for p, _s in asks}
    scale = Decimal(10) ** size_decimals

    def levels(
        side: list[tuple[Decimal, Decimal]], keys: Mapping[int, Decimal]
    ) -> list[tuple[int, int]]:
        # A fee can fold two adjacent raw prices into one all-in unit only on a grid finer
        # than ``price_unit``, which the unit's choice rules out; sizes are exact (lots are
        # coarser than base units).  Levels of size 0 are never held by a replica.
        return [(k, int(s * scale)) for k, (_p, s) in zip(keys, side, strict=True)]

    book = ops_module.Book(market.venue, levels(bids, raw_bids), levels(asks, raw_asks), 0)
    assert replica.seq is not None
    return VenueBook(market, replica.seq, price_unit, book, raw_asks, raw_bids)


class BookBoard:
    """Replicas of every (venue, market) seen, and the aggregated book per pair, on demand.

    ``decimals(symbol)``: the asset's decimals (``None``: unknown asset, its books are skipped).
    ``ops_module``: ``pipeline.ops`` (Rust) in the pipeline; the tests pass the twin too.
    """

    def __init__(self, decimals: Callable[[str], int | None], ops_module: ModuleType = ops) -> None:
        self._decimals = decimals
        self._ops = ops_module
        self.replicas: dict[tuple[str, str], BookReplica] = {}
        """(venue, market_id) -> its replica."""
        self.markets: dict[tuple[str, str], VenueMarket] = {}
        """(venue, market_id) -> what its latest snapshot said."""
        self._venue_books: dict[tuple[str, str], VenueBook] = {}
        """Built from a replica since its last change (dropped when it changes)."""
        self._books: dict[Pair, AggregatedBook | None] = {}
        """Per pair, the aggregate since the last change of any of its venues."""
        self.applied = 0
        self.aggregations = 0
        """How many times a pair was aggregated (tests and the status page watch it)."""

    @property
    def gaps(self) -> int:
        return sum(r.gaps for r in self.replicas.values())

    def apply(self, message: BookSnapshot | BookDelta) -> Applied:
        key = (message.venue, message.market_id)
        if isinstance(message, BookSnapshot):
            market = VenueMarket.of(message)
            old = self.markets.get(key)
            if old is not None and (old.base, old.quote) != (market.base, market.quote):
                self._books.pop((old.base, old.quote), None)
            self.markets[key] = market
        replica = self.replicas.get(key)
        if replica is None:
            replica = self.replicas[key] = BookReplica()
        outcome = replica.apply(message)
        if outcome is Applied.APPLIED or outcome is Applied.GAP:
            self.applied += outcome is Applied.APPLIED
            self._venue_books.pop(key, None)
            known = self.markets.get(key)
            if known is not None:
                self._books.pop((known.base, known.quote), None)
        if outcome is Applied.GAP:
            log.warning(
                "gap in a book; waiting for its next snapshot",
                extra={"venue": message.venue, "market": message.market_id},
            )
        return outcome

    def pairs(self) -> set[Pair]:
        return {(m.base, m.quote) for m in self.markets.values()}

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        """The pair's aggregated book over the venues in sync; ``None``: no venue has one."""
        pair = (base, quote)
        if pair in self._books:
            return self._books[pair]
        found = self._books[pair] = self._aggregate(pair)
        return found

    def _aggregate(self, pair: Pair) -> AggregatedBook | None:
        keys = [
            k
            for k, m in self.markets.items()
            if (m.base, m.quote) == pair and self.replicas[k].in_sync
        ]
        size_decimals = self._decimals(pair[0])
        if not keys or size_decimals is None:
            return None
        price_unit = min(self.markets[k].tick_size for k in keys) / PRICE_SUBTICKS
        venues: dict[str, VenueBook] = {}
        for key in keys:
            built = self._venue_books.get(key)
            if key[0] in venues:  # a second market of one venue for the same pair
                continue
            if built is None or built.price_unit != price_unit:
                try:
                    built = venue_book(
                        self.markets[key], self.replicas[key], price_unit, size_decimals, self._ops
                    )
                except self._ops.InvalidBookError as exc:
                    log.warning(
                        "book skipped", extra={"venue": key[0], "market": key[1], "error": str(exc)}
                    )
                    continue
                self._venue_books[key] = built
            venues[key[0]] = built
        self.aggregations += 1
        consolidated = self._ops.aggregate_books([v.book for v in venues.values()])
        return AggregatedBook(
            pair[0], pair[1], price_unit, size_decimals, consolidated, venues, self._ops
        )
