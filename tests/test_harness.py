"""The test harness's own behaviour that tests rely on (pipeline/harness.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.harness import skip_backlog


@pytest.mark.services
async def test_skip_backlog_waits_for_a_departing_member_then_commits_the_ends(
    kafka_bootstrap: str,
) -> None:
    topic, group = f"test.skip.{uuid.uuid4().hex[:8]}", f"skip-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, b"x", partition=i % 2)
    finally:
        await producer.stop()
    # A member of the group, as a worker an earlier test left behind: the broker refuses an
    # outside commit until it is gone.
    member = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await member.start()
    await member.getmany(timeout_ms=2000)
    skipping = asyncio.create_task(skip_backlog(kafka_bootstrap, group, {topic: 2}))
    await asyncio.sleep(1.5)
    assert not skipping.done()
    await member.stop()  # leaves the group
    await asyncio.wait_for(skipping, 20)
    check = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await check.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(2)]
        check.assign(tps)
        assert {tp.partition: await check.committed(tp) for tp in tps} == {0: 5, 1: 5}
    finally:
        await check.stop()
