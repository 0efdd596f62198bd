"""The clob venue's market source in the pipeline's publisher, against the real broker: an
enabled venue's books appear on ``sep.market.books`` as a snapshot, then deltas that chain
(each delta's ``from_seq`` is the version before it), and a replica of them equals the book."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from clob_support import ASSETS, clob_config, market
from pydantic import TypeAdapter

from pipeline.market.publisher import MarketPublisher
from pipeline.models.market import BookDelta, BookMessage, BookSnapshot
from pipeline.plugins import MarketData, make_plugin_manager, market_sources
from pipeline.plugins.venue import VenueContext
from pipeline.runtime.delivery.sink import KafkaSink
from pipeline.runtime.topics import ensure_topics
from pipeline.topology import load_topology
from plugins.clob_venue import BOOKS_TOPIC, BookReplica, ClobVenue, OrderType, Side, TimeInForce
from plugins.clob_venue.books import Applied

pytestmark = pytest.mark.services

MESSAGES = TypeAdapter(BookMessage)


def test_every_instance_registers_a_book_source_on_the_topologys_topic() -> None:
    specs = {s.name: s for s in market_sources(make_plugin_manager(load_entrypoints=False))}
    for name in ("clob", "clob_a", "clob_b"):
        spec = specs[f"{name}.books"]
        assert (spec.venue, spec.topic, spec.data) == (name, BOOKS_TOPIC, MarketData.BOOKS)
    books = load_topology().topic(BOOKS_TOPIC)
    assert books.cleanup_policy == "delete"
    assert books.retention_ms <= 3_600_000


async def _read(
    bootstrap: str, start: dict[TopicPartition, int], key: bytes
) -> list[BookSnapshot | BookDelta]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(list(start))
        out: list[BookSnapshot | BookDelta] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [
                    MESSAGES.validate_json(r.value)
                    for r in records
                    if r.key == key and r.value is not None
                ]
        return out
    finally:
        await consumer.stop()


async def test_an_enabled_venues_books_go_on_the_topic_as_a_snapshot_then_chained_deltas(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topology = load_topology()
    await ensure_topics(kafka_bootstrap, topology)
    # A venue on the wall clock whose maker moves fast, polled every 20 ms; no periodic
    # snapshot within the test, so everything after the first is a delta.
    config = clob_config(
        poll_interval_ms=20,
        snapshot_interval_ms=600_000,
        markets={
            "WETH-USDC": market(
                {"spread_bps": "8", "levels": 5, "level_size": "1.5", "refresh_ms": 20},
                volatility_bps="300",
                period_s="2",
            )
        },
    )
    venue = ClobVenue("clob_a", config, VenueContext(data_dir=tmp_path / "clob_a", assets=ASSETS))
    await venue.start()
    sink = KafkaSink(
        kafka_bootstrap,
        client_id="test-books",
        partitions={t.name: t.partitions for t in topology.topics},
    )
    await sink.start()

    async def send(topic: str, key: bytes, value: bytes) -> object:
        return await (await sink.send(topic, key, value))

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    await consumer.start()
    tps = [
        TopicPartition(BOOKS_TOPIC, p)
        for p in sorted(consumer.partitions_for_topic(BOOKS_TOPIC) or {0})
    ]
    start = await consumer.end_offsets(tps)
    await consumer.stop()

    publisher = MarketPublisher(
        market_sources(make_plugin_manager(load_entrypoints=False)), {"clob_a": venue}, send
    )
    # Books are not pools: the planner still asks the venue for its (no) pools.
    assert (publisher.venues, publisher.book_venues) == (set(), {"clob_a"})
    publisher.start()
    try:
        for _ in range(3):
            await asyncio.sleep(0.3)
            await venue.place_order(
                "WETH-USDC",
                Side.BUY,
                Decimal("0.4"),
                None,
                order_type=OrderType.MARKET,
                tif=TimeInForce.IOC,
            )
        await asyncio.sleep(0.3)
    finally:
        await publisher.stop()
    book = (await venue.books())["WETH-USDC"]
    await venue.stop()
    await sink.stop()

    messages = await _read(kafka_bootstrap, start, b"clob_a/WETH-USDC")
    assert publisher.published == len(messages) >= 5
    first, rest = messages[0], messages[1:]
    assert isinstance(first, BookSnapshot)
    assert all(isinstance(m, BookDelta) for m in rest)
    seqs = [first.seq] + [m.seq for m in rest]
    assert [m.from_seq for m in rest if isinstance(m, BookDelta)] == seqs[:-1]
    assert seqs == sorted(set(seqs))
    replica = BookReplica()
    assert all(replica.apply(m) is Applied.APPLIED for m in messages)
    bids, asks = replica.levels()
    assert bids
    assert asks
    assert bids[0][0] < asks[0][0]
    # (Reading the venue's book again lets its maker refresh: it may have moved on since.)
    assert replica.seq is not None
    assert replica.seq <= book.seq
