"""The Kafka sink against the real broker: records that share a batch share its
acknowledgement, and arrive whole and in order; a batch fills up and the next one takes over;
a record the producer refuses fails its own send, not the batch before it."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from pipeline import limits
from pipeline.runtime.delivery.sink import KafkaSink
from tests.kafka_support import new_topic

pytestmark = pytest.mark.services


async def _read(bootstrap: str, topic: str, partition: int, count: int) -> list[tuple]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    got: list[tuple] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < count:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    got += [(r.key, r.value, tuple(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return got


async def test_records_of_one_batch_share_its_acknowledgement_and_arrive_in_order(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap, "test.sink", 2)
    sink = KafkaSink(kafka_bootstrap, partitions={topic: 2})
    await sink.start()
    try:
        sent = [(b"k%d" % i, b"v%d" % i, (("h", b"%d" % i),) if i % 2 else ()) for i in range(300)]
        acks = [await sink.send(topic, k, v, partition=0, headers=h) for k, v, h in sent]
        # The first record goes through producer.send (the topic's metadata); the rest share
        # the batch they were appended to.
        assert len({id(a) for a in acks}) < 10
        await asyncio.gather(*acks)
        assert all(asyncio.ensure_future(a).done() for a in acks)
    finally:
        await sink.stop()
    assert await _read(kafka_bootstrap, topic, 0, len(sent)) == sent


async def test_a_full_batch_is_followed_by_a_new_one_and_every_record_lands(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap, "test.sink", 1)
    sink = KafkaSink(kafka_bootstrap, partitions={topic: 1})
    await sink.start()
    try:
        value = b"x" * 50_000  # a 256 KiB batch holds five of them
        acks = [await sink.send(topic, b"%d" % i, value, partition=0) for i in range(40)]
        assert len({id(a) for a in acks}) >= 8
        await asyncio.gather(*acks)
    finally:
        await sink.stop()
    got = await _read(kafka_bootstrap, topic, 0, 40)
    assert [k for k, _v, _h in got] == [b"%d" % i for i in range(40)]


async def test_a_refused_record_fails_its_own_send_and_spares_the_batches_around_it(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap, "test.sink", 1)
    sink = KafkaSink(kafka_bootstrap, partitions={topic: 1})
    await sink.start()
    too_big = b"x" * (limits.PRODUCER_MAX_REQUEST_BYTES + 1)
    try:
        await (await sink.send(topic, b"a0", b"small"))  # the next batch starts empty
        with pytest.raises(MessageSizeTooLargeError):
            await sink.send(topic, b"big", too_big)
        later = [await sink.send(topic, b"a%d" % i, b"small") for i in range(1, 4)]
        with pytest.raises(MessageSizeTooLargeError):  # and into an open batch
            await sink.send(topic, b"big", too_big)
        await asyncio.gather(*later)
    finally:
        await sink.stop()
    got = await _read(kafka_bootstrap, topic, 0, 4)
    assert [k for k, _v, _h in got] == [b"a0", b"a1", b"a2", b"a3"]


async def test_a_topic_created_after_the_start_leaves_the_others_deliverable(
    kafka_bootstrap: str,
) -> None:
    """A send to a topic the producer's first metadata lacked narrows aiokafka's refreshes to
    the topics added since; the fast path's topics must stay among them (``track_topic``),
    or their records wait for a leader until the request times out."""
    early = await new_topic(kafka_bootstrap, "test.sink", 2)
    sink = KafkaSink(kafka_bootstrap, partitions={early: 2})
    await sink.start()
    try:
        await (await sink.send(early, b"k", b"first", partition=0))  # producer.send: cached
        late = await new_topic(kafka_bootstrap, "test.sink", 1)
        await (await sink.send(late, b"k", b"late", partition=0))
        await sink.producer.client.force_metadata_update()  # a refresh of the tracked topics
        assert sink.producer.client.cluster.partitions_for_topic(early) == {0, 1}
        async with asyncio.timeout(10):
            await (await sink.send(early, b"k", b"second", partition=0))  # the fast path
    finally:
        await sink.stop()
    assert [v for _, v, _ in await _read(kafka_bootstrap, early, 0, 2)] == [b"first", b"second"]
