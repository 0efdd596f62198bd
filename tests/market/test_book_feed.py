"""The book feed against the real broker: it reads back ``lookback_ms``, follows the tail,
keeps the aggregated book current, and resyncs after a gap on the next snapshot."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from test_board import DECIMALS, delta, snap

from pipeline.config import Settings
from pipeline.market.books import BookFeed
from pipeline.models.market import BookDelta, BookSnapshot
from pipeline.runtime.worker import build_runtime
from pipeline.topology import Topology, parse_topology
from pipeline.topology.loader import DEFAULT_PATH


async def _topic(bootstrap: str) -> str:
    name = f"test.books.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()
    return name


async def _publish(bootstrap: str, topic: str, *messages: BookSnapshot | BookDelta) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for m in messages:
            key = f"{m.venue}/{m.market_id}".encode()
            await producer.send_and_wait(topic, m.model_dump_json(by_alias=True).encode(), key=key)
    finally:
        await producer.stop()


def _asks(feed: BookFeed) -> list[tuple[Decimal, tuple[tuple[str, int], ...]]]:
    book = feed.book("WETH", "USDC")
    assert book is not None
    return [(book.price(p), parts) for p, _, parts in book.book.asks]


@pytest.mark.services
async def test_the_feed_catches_up_follows_and_resyncs_after_a_gap(kafka_bootstrap: str) -> None:
    topic = await _topic(kafka_bootstrap)
    await _publish(
        kafka_bootstrap,
        topic,
        snap("a", 1, {"2999.00": "1"}, {"3000.00": "2"}),
        delta("a", 1, 2, asks={"3000.50": "1"}),
        snap("b", 7, {"2998.00": "1"}, {"3001.00": "1"}),
    )
    feed = BookFeed(kafka_bootstrap, DECIMALS.get, topic, partitions=2)
    await feed.start()
    try:
        assert feed.updates == 3
        assert _asks(feed) == [
            (Decimal("3000.00"), (("a", 2 * 10**18),)),
            (Decimal("3000.50"), (("a", 10**18),)),
            (Decimal("3001.00"), (("b", 10**18),)),
        ]
        seen = feed.updates
        # A delta of b that skips versions 8..9: b is dropped until its next snapshot.
        await _publish(
            kafka_bootstrap,
            topic,
            delta("b", 9, 10, asks={"3001.00": "5"}),
            delta("a", 2, 3, asks={"3000.00": "0"}),
        )
        await feed.wait_for_update(seen, timeout_s=10)
        assert feed.board.gaps == 1
        assert _asks(feed) == [(Decimal("3000.50"), (("a", 10**18),))]
        seen = feed.updates
        await _publish(kafka_bootstrap, topic, snap("b", 10, {"2998.00": "1"}, {"3001.00": "5"}))
        await feed.wait_for_update(seen, timeout_s=10)
        assert _asks(feed)[-1] == (Decimal("3001.00"), (("b", 5 * 10**18),))
    finally:
        await feed.stop()


@pytest.mark.services
async def test_a_feed_starting_late_skips_what_is_older_than_its_lookback(
    kafka_bootstrap: str,
) -> None:
    topic = await _topic(kafka_bootstrap)
    await _publish(kafka_bootstrap, topic, snap("a", 1, {"2999.00": "1"}, {"3000.00": "2"}))
    feed = BookFeed(
        kafka_bootstrap, DECIMALS.get, topic, partitions=2, lookback_ms=-60_000
    )  # the future
    await feed.start()
    try:
        assert feed.updates == 0
        assert feed.book("WETH", "USDC") is None
    finally:
        await feed.stop()


def _topology(enable_books: bool) -> Topology:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["plugins"]["venues"]["clob_a"]["enabled"] = enable_books
    return parse_topology(yaml.safe_dump(data))


@pytest.mark.parametrize("enabled", [False, True])
def test_a_worker_follows_books_only_when_a_book_venue_is_enabled(
    tmp_path: Path, enabled: bool
) -> None:
    _, lifecycle = build_runtime(_topology(enabled), Settings(data_dir=tmp_path))
    context = lifecycle._context
    assert "clob_a" not in context.market_venues  # books never stand in for its pools
    if enabled:
        assert isinstance(lifecycle.book_feed, BookFeed)
        assert context.books is lifecycle.book_feed
    else:
        assert lifecycle.book_feed is None
        assert context.books is None


def test_a_planners_feed_keeps_only_the_venues_it_can_place_orders_on() -> None:
    # ``apply`` is the feed's whole path for a record (nothing connects until ``start``).
    feed = BookFeed("unused:9092", DECIMALS.get, venues={"clob_a"})
    mine = snap("clob_a", 1, {"2999": "1"}, {"3001": "1"})
    foreign = snap("elsewhere", 1, {"2999.5": "1"}, {"3000": "5"})
    assert feed.apply(foreign.model_dump_json(by_alias=True).encode()) is False
    assert feed.apply(mine.model_dump_json(by_alias=True).encode()) is True
    book = feed.book("WETH", "USDC")
    assert book is not None
    assert set(book.venues) == {"clob_a"}
    # The UI's feed (no venues given) shows every venue on the topic.
    every = BookFeed("unused:9092", DECIMALS.get)
    for message in (mine, foreign):
        assert every.apply(message.model_dump_json(by_alias=True).encode()) is True
    book = every.book("WETH", "USDC")
    assert book is not None
    assert set(book.venues) == {"clob_a", "elsewhere"}


def test_a_workers_book_feed_is_limited_to_its_venues(tmp_path: Path) -> None:
    _, lifecycle = build_runtime(_topology(True), Settings(data_dir=tmp_path))
    feed = lifecycle.book_feed
    assert isinstance(feed, BookFeed)
    foreign = snap("elsewhere", 1, {"2999.5": "1"}, {"3000": "5"})
    assert feed.apply(foreign.model_dump_json(by_alias=True).encode()) is False
    assert (
        feed.apply(snap("clob_a", 1, {}, {"3001": "1"}).model_dump_json(by_alias=True).encode())
        is True
    )
