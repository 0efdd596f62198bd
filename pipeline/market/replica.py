"""One market's L2 book rebuilt from its messages on ``sep.market.books``, with gap detection.

The rules are those of ``pipeline.models.market``: a snapshot replaces the book (unless it is
older than the one held); a delta applies when ``from_seq <= seq_held < seq``; ``seq <=
seq_held`` is a duplicate; ``from_seq > seq_held`` is a gap: the book is dropped until the next
snapshot (a resync).  Publishers (``plugins.clob_venue.books``) and planners
(``pipeline.market.board``) share this one implementation.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pipeline.models.market import BookDelta, BookSnapshot


class Applied(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    """Already in the replica (an older snapshot, a delta it has seen): ignored."""
    GAP = "gap"
    """A delta from past the replica's version: the book is dropped until a snapshot."""
    WAITING = "waiting"
    """A delta while there is no book (never had one, or after a gap): ignored."""


class BookReplica:
    """One market's book rebuilt from its messages, with gap detection."""

    def __init__(self) -> None:
        self.seq: int | None = None
        """The version held; ``None``: no book (waiting for a snapshot)."""
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.gaps = 0

    @property
    def in_sync(self) -> bool:
        return self.seq is not None

    def apply(self, message: BookSnapshot | BookDelta) -> Applied:
        if isinstance(message, BookSnapshot):
            if self.seq is not None and message.seq < self.seq:
                return Applied.DUPLICATE
            self.seq = message.seq
            self.bids = {level.price: level.size for level in message.bids}
            self.asks = {level.price: level.size for level in message.asks}
            return Applied.APPLIED
        if self.seq is None:
            return Applied.WAITING
        if message.seq <= self.seq:
            return Applied.DUPLICATE
        if message.from_seq > self.seq:
            self.seq, self.bids, self.asks = None, {}, {}
            self.gaps += 1
            return Applied.GAP
        for side, levels in ((self.bids, message.bids), (self.asks, message.asks)):
            for level in levels:
                if level.size:
                    side[level.price] = level.size
                else:
                    side.pop(level.price, None)
        self.seq = message.seq
        return Applied.APPLIED

    def levels(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """``(bids, asks)`` best first."""
        return (sorted(self.bids.items(), reverse=True), sorted(self.asks.items()))
