"""The venue's market-data source: its L2 books as snapshots and sequenced deltas.

``BookSource`` polls the venue every ``poll_interval_ms`` (each poll also lets the makers
refresh: the venue has no background task) and yields what ``books.BookPublication`` says to
publish, a list of messages per poll, the first a snapshot of every market:

    async for messages in BookSource(venue).updates():   # list[BookSnapshot | BookDelta]
        for m in messages: send(BOOKS_TOPIC, book_key(m), book_value(m))

``publish_books`` is that loop.  In a worker, the plugin's market source
(``make_book_source``, registered as ``clob.books`` per instance with ``MarketData.BOOKS``)
yields the same messages as ``MarketRecord``s keyed ``venue/market_id``, and the pipeline's
``MarketPublisher`` sends them; planners follow them with ``pipeline.market.books.BookFeed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from pipeline.models.market import BookDelta, BookSnapshot
from pipeline.plugins.market import MarketRecord
from pipeline.plugins.venue import Venue
from plugins.clob_venue.books import BookPublication, book_key, book_value
from plugins.clob_venue.venue import ClobVenue

BOOKS_TOPIC = "sep.market.books"

Send = Callable[[str, bytes, bytes], Awaitable[object]]


class BookSource:
    """Yields each poll's book messages until closed."""

    def __init__(self, venue: ClobVenue, *, clock_ms: Callable[[], float] | None = None) -> None:
        self.venue = venue
        self._clock_ms = clock_ms or venue._clock_ms
        self._publication = BookPublication(venue.market_infos(), venue.config.snapshot_interval_ms)
        self._closed = asyncio.Event()

    def close(self) -> None:
        self._closed.set()

    async def poll(self) -> list[BookSnapshot | BookDelta]:
        """One poll: what to publish now (possibly nothing)."""
        states = await self.venue.books()
        return self._publication.messages(states, int(self._clock_ms()))

    async def updates(self) -> AsyncIterator[list[BookSnapshot | BookDelta]]:
        interval = self.venue.config.poll_interval_ms / 1000
        while not self._closed.is_set():
            messages = await self.poll()
            if messages:
                yield messages
            with contextlib.suppress(TimeoutError):  # the pause, cut short by close()
                await asyncio.wait_for(self._closed.wait(), timeout=interval)


class BookRecords:
    """A ``BookSource`` as a ``pipeline.plugins.market.MarketSource``: each poll's messages as
    records keyed ``venue/market_id`` (one market's messages stay in order on one partition)."""

    def __init__(self, source: BookSource) -> None:
        self.source = source

    def close(self) -> None:
        self.source.close()

    async def updates(self) -> AsyncIterator[list[MarketRecord]]:
        async for messages in self.source.updates():
            yield [MarketRecord(book_key(m), book_value(m)) for m in messages]


def make_book_source(venue: Venue) -> BookRecords:
    if not isinstance(venue, ClobVenue):
        raise TypeError(f"the clob book source needs a ClobVenue, got {type(venue).__name__}")
    return BookRecords(BookSource(venue))


async def publish_books(source: BookSource, send: Send, topic: str = BOOKS_TOPIC) -> int:
    """Publish everything ``source`` yields until it is closed; how many messages were sent."""
    sent = 0
    async for messages in source.updates():
        await asyncio.gather(*(send(topic, book_key(m), book_value(m)) for m in messages))
        sent += len(messages)
    return sent
