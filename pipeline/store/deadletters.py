"""Reading ``sep.deadletter`` back for a person: the newest records with why, where from, and
their bytes (a bounded prefix, see ``pipeline.stages.rejections.dead_letter``).

No consumer group: the reader assigns every partition itself, seeks to ``limit`` records
before each end and reads up to the end it saw, so it never commits and never disturbs
anyone.  What it returns is bounded: ``limit`` records, each value cut to ``PREVIEW_BYTES``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.stages.rejections import DEADLETTER_TOPIC

PREVIEW_BYTES = 4096
MAX_LIMIT = 1000


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str
    value: bytes
    """At most ``PREVIEW_BYTES`` of the stored value."""
    stored_bytes: int
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.headers.get("sep-reason", "")

    @property
    def kind(self) -> str:
        """What to filter on: the reason up to its first colon (a field path, or "<stage>
        failed"), at most 80 characters."""
        return self.reason.split(":", 1)[0].strip()[:80] or "(no reason)"

    def document(self) -> dict[str, Any]:
        try:
            errors = orjson.loads(self.headers.get("sep-errors", "[]"))
        except orjson.JSONDecodeError:
            errors = []
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
            "key": self.key,
            "reason": self.reason,
            "kind": self.kind,
            "errors": errors,
            "errorsOmitted": int(self.headers.get("sep-errors-omitted", "0") or 0),
            "source": self.headers.get("sep-source", ""),
            "correlationId": self.headers.get("sep-correlation-id", ""),
            "originalBytes": int(self.headers.get("sep-original-bytes", self.stored_bytes) or 0),
            "storedBytes": self.stored_bytes,
            "sha256": self.headers.get("sep-sha256", ""),
            "truncated": self.headers.get("sep-truncated") == "true",
            # The bytes as text (invalid UTF-8 replaced) and as hex: the UI escapes and marks
            # the control characters; nothing here is ever interpreted.
            "preview": self.value.decode("utf-8", "replace"),
            "previewHex": self.value[:512].hex(),
            "previewBytes": len(self.value),
        }


def _decode(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace")


async def _partitions(kafka: str, topic: str, timeout_s: float) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        TopicPartition(topic, p["partition"])
        for t in described
        if t.get("error_code", 0) == 0
        for p in t.get("partitions", ())
    )


async def read_recent(
    kafka: str, limit: int = 200, topic: str = DEADLETTER_TOPIC, timeout_s: float = 5.0
) -> tuple[list[DeadLetter], int]:
    """The newest ``limit`` dead letters of each partition, newest first (at most ``limit`` in
    all), and how many records the topic holds."""
    limit = max(1, min(limit, MAX_LIMIT))
    tps = await _partitions(kafka, topic, timeout_s)
    if not tps:
        return [], 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka, enable_auto_commit=False, request_timeout_ms=int(timeout_s * 1000)
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        held = sum(ends[tp] - begins[tp] for tp in tps)
        wanted = {tp for tp in tps if ends[tp] > begins[tp]}
        for tp in wanted:
            consumer.seek(tp, max(begins[tp], ends[tp] - limit))
        out: list[DeadLetter] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while wanted and loop.time() < deadline:
            batch = await consumer.getmany(*wanted, timeout_ms=200, max_records=limit)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        value = r.value or b""
                        out.append(
                            DeadLetter(
                                r.topic,
                                r.partition,
                                r.offset,
                                r.timestamp,
                                _decode(r.key),
                                value[:PREVIEW_BYTES],
                                len(value),
                                {k: _decode(v) for k, v in r.headers or ()},
                            )
                        )
            wanted = {tp for tp in wanted if await consumer.position(tp) < ends[tp]}
        out.sort(key=lambda d: (d.timestamp_ms, d.partition, d.offset), reverse=True)
        return out[:limit], held
    finally:
        await consumer.stop()
