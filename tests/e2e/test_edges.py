"""What producers that are not ours send, against the real broker and the running workers:
an oversized record ahead of a valid one on the same partition, the same submission on two
partitions, a record whose timestamp is years ahead (issue 10, points 2-4)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline import limits
from pipeline.client import INPUT_TOPIC, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, group_offsets, wait_until_finished
from pipeline.samples import random_submission
from pipeline.stages.rejections import DEADLETTER_TOPIC
from pipeline.topology import load_topology
from tests.e2e.checks import dead_letter_end

TOPOLOGY = load_topology()


def body(run: str, i: int) -> dict[str, object]:
    data = random_submission(
        TOPOLOGY,
        random.Random(f"{run}-{i}"),
        strategy_id=f"edge-{run}",
        client_intent_id=f"{run}-{i}",
        venues=["sim"],
    )
    data["constraints"]["maxSlippage"] = "0.05"
    return data


async def send(
    settings: Settings, value: bytes, key: bytes, partition: int, timestamp_ms: int | None = None
) -> int:
    """Produce one record as a foreign client would (explicit partition); its timestamp."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka, max_request_size=limits.BROKER_MAX_MESSAGE_BYTES
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            INPUT_TOPIC, value, key=key, partition=partition, timestamp_ms=timestamp_ms
        )
        return int(meta.timestamp)
    finally:
        await producer.stop()


async def dead_letters_since(settings: Settings, start: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(DEADLETTER_TOPIC, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


def reason_of(record: Any) -> bytes:
    headers = dict(record.headers)
    return bytes(headers.get("sep-reason", b""))


async def test_an_oversized_record_is_dead_lettered_bounded_and_the_next_one_completes(
    workers: WorkerPool, prepared: Settings
) -> None:
    run = uuid.uuid4().hex[:8]
    before = await dead_letter_end(prepared)
    huge = b'{"strategyId": "' + b"x" * 1_000_000 + b'"}'
    await send(prepared, huge, f"edge-{run}".encode(), partition=3)
    valid = body(run, 0)
    stamp = await send(prepared, orjson.dumps(valid), f"edge-{run}".encode(), partition=3)
    intent = predicted_intent_id(
        stamp, str(valid["strategyId"]), str(valid["clientIntentId"]), partition=3
    )
    done = await wait_until_finished(prepared.postgres, [intent], timeout=60, pool=workers)
    assert done[intent] == "exec.completed"
    letters = await dead_letters_since(prepared, before)
    mine = [
        r for r in letters if dict(r.headers).get("sep-original-bytes") == str(len(huge)).encode()
    ]
    assert len(mine) == 1
    assert len(mine[0].value) <= limits.DEAD_LETTER_PREFIX_BYTES
    # The partition's committed offset moves past both records.
    for _ in range(40):
        committed, end = (await group_offsets(prepared.kafka))[TOPOLOGY.app.id][f"{INPUT_TOPIC}/3"]
        if committed == end:
            break
        await asyncio.sleep(0.25)
    assert committed == end


async def test_one_submission_on_two_partitions_is_one_intent(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:8]
    data = orjson.dumps(body(run, 1))
    first = await send(prepared, data, b"crc32-client", partition=1)
    second = await send(prepared, data, b"murmur2-client", partition=6)
    ids = [
        predicted_intent_id(t, f"edge-{run}", f"{run}-1", partition=p)
        for t, p in ((first, 1), (second, 6))
    ]

    async def stored() -> list[str]:
        rows = await db.fetch(
            "SELECT DISTINCT correlation_id FROM events WHERE topic = "
            "'intent.submitted' AND payload->'intent'->>'strategyId' = $1",
            f"edge-{run}",
        )
        return [r["correlation_id"] for r in rows]

    # The two partitions may belong to two workers: whichever record is ingested first is
    # the intent (either id), and the other is its duplicate.
    for _ in range(300):  # 60 s
        found = await stored()
        if found:
            break
        await asyncio.sleep(0.2)
    assert found, "neither copy became an intent"
    await wait_until_finished(prepared.postgres, found[:1], timeout=60, pool=workers)
    await asyncio.sleep(1.0)  # the duplicate has been read by now (the original finished after it)
    assert await stored() == found[:1]
    assert found[0] in ids


async def test_a_record_from_ten_years_ahead_is_rejected_with_the_reason(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:8]
    ahead = int(time.time() * 1000) + 10 * 365 * 24 * 3600 * 1000
    before = await dead_letter_end(prepared)
    await send(prepared, orjson.dumps(body(run, 2)), b"skewed", partition=2, timestamp_ms=ahead)
    for _ in range(120):
        letters = [
            r for r in await dead_letters_since(prepared, before) if b"timestamp" in reason_of(r)
        ]
        if letters:
            break
        await asyncio.sleep(0.25)
    assert letters, "no dead letter for the skewed record"
    intent = dict(letters[0].headers)["sep-correlation-id"].decode()
    # The dead letter comes from ingest; the rejection event reaches the store through
    # project, a moment later.
    await wait_until_finished(prepared.postgres, [intent], timeout=60, pool=workers)
    rows = await db.fetch("SELECT topic, payload FROM events WHERE correlation_id = $1", intent)
    assert [r["topic"] for r in rows] == ["intent.rejected"]
    rejection = orjson.loads(rows[0]["payload"])
    assert any(e["path"].endswith("timestamp") for e in rejection["errors"]), rejection
    assert not await db.fetch(
        "SELECT 1 FROM events WHERE topic = 'intent.submitted' AND "
        "payload->'intent'->>'strategyId' = $1",
        f"edge-{run}",
    )
