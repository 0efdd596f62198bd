"""The adaptive fetch wait: the rule, and against the real broker that a long idle wait
neither delays records nor lets a partition's next records wait behind it."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.runtime.delivery.patches import AdaptiveWaitConsumer, covers_every_partition

LONG_IDLE_WAIT_MS = 5_000
"""Far longer than any assertion's bound: a record that waited for it fails the test."""


@dataclass
class _State:
    has_valid_position: bool = True
    paused: bool = False


def test_a_request_covers_every_partition_only_with_nothing_buffered_paused_or_resetting() -> None:
    assert covers_every_partition(False, [_State(), _State()])
    assert covers_every_partition(False, [])
    assert not covers_every_partition(True, [_State()])
    assert not covers_every_partition(False, [_State(), _State(paused=True)])
    assert not covers_every_partition(False, [_State(has_valid_position=False), _State()])


async def _topic(bootstrap: str, partitions: int) -> str:
    name = f"test.fetchwait.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def _consumer(bootstrap: str, topic: str, partitions: int) -> AdaptiveWaitConsumer:
    consumer = AdaptiveWaitConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        idle_wait_ms=LONG_IDLE_WAIT_MS,
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer


async def _received_within(
    consumer: AdaptiveWaitConsumer,
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    take_after_s: float = 0.0,
) -> float:
    """Seconds from sending one record to ``partition`` until the consumer has it, the
    consumer only asking ``take_after_s`` after the send."""
    started = time.monotonic()
    await producer.send_and_wait(topic, b"x", partition=partition)
    await asyncio.sleep(take_after_s)
    while True:
        batch = await consumer.getmany(timeout_ms=100)
        if any(tp.partition == partition for tp in batch):
            return time.monotonic() - started
        assert time.monotonic() - started < 10, "record never arrived"


@pytest.mark.services
async def test_records_arrive_at_once_while_idle_and_right_after_a_partitions_last_ones(
    kafka_bootstrap: str,
) -> None:
    topic = await _topic(kafka_bootstrap, 4)
    consumer = await _consumer(kafka_bootstrap, topic, 4)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await consumer.getmany(timeout_ms=500)  # caught up: a long-wait fetch is in flight
        # Idle: the in-flight fetch covers every partition, so data ends its wait.
        assert await _received_within(consumer, producer, topic, 2) < 1.5
        for _ in range(3):
            # Records left untaken for longer than aiokafka's prefetch backoff (0.1 s): the
            # fetcher goes on without their partition, so the fetch in flight leaves it out...
            await _received_within(consumer, producer, topic, 2, take_after_s=0.3)
            # ...and the partition's next record must not wait for that fetch's wait to end.
            assert await _received_within(consumer, producer, topic, 2) < 1.5
    finally:
        await producer.stop()
        await consumer.stop()


@pytest.mark.services
async def test_an_idle_consumer_sends_a_fetch_per_idle_wait_not_per_short_wait(
    kafka_bootstrap: str,
) -> None:
    topic = await _topic(kafka_bootstrap, 4)
    consumer = await _consumer(kafka_bootstrap, topic, 4)
    fetches = 0
    client: Any = consumer._client
    send = client.send

    async def counting_send(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal fetches
        fetches += type(request).__name__.startswith("FetchRequest")
        return await send(node_id, request, *args, **kwargs)

    client.send = counting_send
    try:
        await consumer.getmany(timeout_ms=200)
        before = fetches
        await asyncio.sleep(2.0)
        # A 10 ms wait would have sent ~200 fetches; the idle wait allows one or two.
        assert fetches - before <= 2
    finally:
        await consumer.stop()
