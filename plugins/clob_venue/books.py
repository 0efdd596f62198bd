"""L2 books as messages: a snapshot per market, then sequenced deltas.  Pure: no I/O, no clock.

Publishing side, ``BookPublication``: handed each market's book as it is now (its version and
its levels in ticks and lots), it says what to publish:

    first time, or snapshot_interval_ms since the last snapshot -> BookSnapshot(seq, levels)
    the version moved and some level changed                      -> BookDelta(from_seq, seq,
                                                                        new size per level)

A delta is computed as the difference between the levels last published and the levels now
(``level_changes``), so whoever polls at whatever rate publishes a correct delta, and two
publishers polling one ledger publish interchangeable messages (the version is the ledger's).
Consuming side, ``BookReplica`` (``pipeline.market.replica``, re-exported here): the rules in
``pipeline.models.market`` (apply when ``from_seq <= seq_held < seq``, ignore duplicates, drop
the book on a gap and wait for the next snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pipeline.market.replica import Applied, BookReplica
from pipeline.models.market import BookDelta, BookLevel, BookSnapshot
from plugins.clob_venue.units import of_steps

__all__ = [
    "Applied",
    "BookPublication",
    "BookReplica",
    "BookState",
    "Levels",
    "MarketInfo",
    "book_key",
    "book_value",
    "delta",
    "level_changes",
    "snapshot",
]

Levels = tuple[tuple[int, int], ...]
"""``(price in ticks, size in lots)``, best first."""


@dataclass(frozen=True)
class MarketInfo:
    """What a snapshot says about a market besides its levels."""

    venue: str
    market_id: str
    chain_id: int
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    maker_fee: int
    taker_fee: int


@dataclass(frozen=True)
class BookState:
    seq: int
    """The book's version in the venue's ledger (grows with every change)."""
    bids: Levels
    asks: Levels


def book_key(message: BookSnapshot | BookDelta) -> bytes:
    """The record key on the topic: one market's messages stay in order on one partition."""
    return f"{message.venue}/{message.market_id}".encode()


def book_value(message: BookSnapshot | BookDelta) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_none=True).encode()


def _levels(info: MarketInfo, levels: Levels) -> tuple[BookLevel, ...]:
    return tuple(
        BookLevel(price=of_steps(p, info.tick_size), size=of_steps(s, info.lot_size))
        for p, s in levels
    )


def snapshot(info: MarketInfo, state: BookState, now_ms: int) -> BookSnapshot:
    return BookSnapshot(
        venue=info.venue,
        market_id=info.market_id,
        chain_id=info.chain_id,
        base=info.base,
        quote=info.quote,
        tick_size=info.tick_size,
        lot_size=info.lot_size,
        maker_fee=info.maker_fee,
        taker_fee=info.taker_fee,
        seq=state.seq,
        bids=_levels(info, state.bids),
        asks=_levels(info, state.asks),
        timestamp_ms=now_ms,
    )


def level_changes(old: Levels, new: Levels) -> Levels:
    """The levels whose size differs, with their new size (0: gone), in price order."""
    before, after = dict(old), dict(new)
    return tuple(
        sorted(
            (price, after.get(price, 0))
            for price in before.keys() | after.keys()
            if before.get(price) != after.get(price)
        )
    )


def delta(info: MarketInfo, old: BookState, new: BookState, now_ms: int) -> BookDelta | None:
    """From ``old`` to ``new``; ``None`` if no published level changed."""
    bids, asks = level_changes(old.bids, new.bids), level_changes(old.asks, new.asks)
    if not bids and not asks:
        return None
    return BookDelta(
        venue=info.venue,
        market_id=info.market_id,
        from_seq=old.seq,
        seq=new.seq,
        bids=_levels(info, tuple(reversed(bids))),
        asks=_levels(info, asks),
        timestamp_ms=now_ms,
    )


class BookPublication:
    """What to publish for a venue's markets, poll after poll."""

    def __init__(self, markets: Mapping[str, MarketInfo], snapshot_interval_ms: int) -> None:
        self._markets = dict(markets)
        self._interval = snapshot_interval_ms
        self._published: dict[str, BookState] = {}
        self._snapshot_ms: dict[str, int] = {}

    def messages(
        self, states: Mapping[str, BookState], now_ms: int
    ) -> list[BookSnapshot | BookDelta]:
        out: list[BookSnapshot | BookDelta] = []
        for market_id, state in states.items():
            info = self._markets[market_id]
            last = self._published.get(market_id)
            if last is None or now_ms - self._snapshot_ms[market_id] >= self._interval:
                out.append(snapshot(info, state, now_ms))
                self._snapshot_ms[market_id] = now_ms
                self._published[market_id] = state
            elif state.seq > last.seq:
                message = delta(info, last, state, now_ms)
                if message is not None:  # else: the levels published are still right
                    out.append(message)
                    self._published[market_id] = state
        return out
