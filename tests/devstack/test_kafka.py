"""The real Kafka broker: produce and consume, groups, transactions, restarts, crashes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.devstack.kafka import KafkaBroker, new_cluster_id
from pipeline.devstack.ports import choose_port, port_is_free
from tests.kafka_support import create_topic


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def produce(bootstrap: str, topic: str, values: list[bytes], **config: object) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **config)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int, **config: object) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **config
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        async with asyncio.timeout(60):  # a hang guard, not a timing assertion
            while len(values) < count:
                message = await consumer.getone()
                assert message.value is not None
                values.append(message.value)
        return values
    finally:
        await consumer.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A private broker for tests that stop, kill or restart it."""
    taken: set[int] = set()
    port = choose_port(0, taken=taken)
    taken.add(port)
    node = KafkaBroker(tmp_path / "kafka", port, controller_port=choose_port(0, taken=taken))
    try:
        yield node
    finally:
        node.stop()


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


async def test_produce_then_consume(kafka_bootstrap: str) -> None:
    topic = unique("devstack-roundtrip")
    await create_topic(kafka_bootstrap, topic, partitions=4)
    await produce(kafka_bootstrap, topic, [b"one", b"two", b"three"])
    # One key, so one partition, so the order is kept.
    assert await consume(kafka_bootstrap, topic, 3) == [b"one", b"two", b"three"]


async def test_auto_created_topics_get_four_partitions(kafka_bootstrap: str) -> None:
    topic = unique("devstack-auto")
    await produce(kafka_bootstrap, topic, [b"x"])  # no create_topics: the broker creates it
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 4


async def test_group_consumer_commits_and_resumes(kafka_bootstrap: str) -> None:
    topic, group = unique("devstack-group"), unique("group")
    await create_topic(kafka_bootstrap, topic)
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    settings: dict[str, object] = {"group_id": group, "enable_auto_commit": False}
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", **settings
    )
    await consumer.start()
    try:
        first = await consumer.getone()
        await consumer.commit()
    finally:
        await consumer.stop()
    assert first.value == b"a"
    # A new member of the same group resumes after the committed offset.
    assert await consume(kafka_bootstrap, topic, 1, **settings) == [b"b"]


async def test_transactional_producer_and_read_committed(kafka_bootstrap: str) -> None:
    topic = unique("devstack-txn")
    await create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique("tx"))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"after-abort")
    finally:
        await producer.stop()
    got = await consume(kafka_bootstrap, topic, 2, isolation_level="read_committed")
    assert got == [b"committed", b"after-abort"]


@pytest.mark.services
@pytest.mark.slow
async def test_restart_on_the_same_data_dir_keeps_messages(broker: KafkaBroker) -> None:
    broker.start()
    await broker.wait_healthy(120)
    topic = unique("durable")
    await produce(broker.bootstrap, topic, [b"before-restart"], enable_idempotence=True)
    cluster_id = (broker.log_dirs / "meta.properties").read_text()
    broker.stop()

    broker.start()  # must not reformat: the same cluster, the same logs
    await broker.wait_healthy(120)
    assert (broker.log_dirs / "meta.properties").read_text() == cluster_id
    assert await consume(broker.bootstrap, topic, 1) == [b"before-restart"]


@pytest.mark.services
@pytest.mark.slow
async def test_kill_9_then_restart_recovers_acknowledged_messages(broker: KafkaBroker) -> None:
    broker.start()
    await broker.wait_healthy(120)
    topic = unique("crash")
    await produce(broker.bootstrap, topic, [b"m1", b"m2"])
    broker.kill()

    broker.start()
    await broker.wait_healthy(120)
    assert await consume(broker.bootstrap, topic, 2) == [b"m1", b"m2"]


@pytest.mark.services
@pytest.mark.slow
async def test_stop_frees_both_ports(broker: KafkaBroker) -> None:
    broker.start()
    await broker.wait_healthy(120)
    assert not port_is_free(broker.port)
    broker.stop()
    assert not broker.running
    assert port_is_free(broker.port)
    assert port_is_free(broker.controller_port)
