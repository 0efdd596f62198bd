"""Putting a dead letter back on the topic it came from, once, recorded as an operator event.

Only a record that failed for a passing reason qualifies (``why_not``):

    reason   "<stage> failed: <error>" (``runtime/delivery/safety.py``): the stage raised on
             it after its retries (a dependency away, a bug since fixed).  A schema or
             semantic rejection (ingest, validate) would only be refused again.
    source   "<topic>/<partition>/<offset>" of a topic a stage of the topology consumes
    bytes    whole: not truncated, and their SHA-256 is the one recorded with them
    key      recoverable as the producer chose it, from the topology's key for the topic:
             ``submission_key`` -> the submission's [strategyId, clientIntentId] (or its
             strategyId without a client id, ``pipeline.intent_ids``), ``strategy_id`` -> its
             strategyId, ``intent_id`` -> the event's correlationId (the dead letter's own key
             is not the original one)

The re-drive is recorded in ``operator_events`` (``deadletter.redriven``: who, why, from
where, to where), not in ``events``: ``sep replay`` applies every row of ``events`` to the
intents' read models.  Its id derives from the dead letter's place, and the check, the
produce and the insert run under one transaction-scoped advisory lock, so two operators (or
two UI replicas) clicking at once re-drive it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.ids import deterministic_ulid
from pipeline.intent_ids import submission_key
from pipeline.stages.base import now_ms
from pipeline.stages.rejections import DEADLETTER_TOPIC
from pipeline.store.deadletters import DeadLetter
from pipeline.topology.models import Topology

REDRIVEN = "deadletter.redriven"
PASSING = re.compile(r"^[a-z_]+ failed: ")
SOURCE = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)/(?P<partition>\d+)/(?P<offset>\d+)$")
HEADER = "sep-redrive-of"
"""Header on the re-driven record: the dead letter's ``topic/partition/offset``."""


class RedriveError(Exception):
    """A re-drive refused; ``code`` names why (the API's error), the message says what to do."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


def _source(letter: DeadLetter) -> tuple[str, int, int] | None:
    m = SOURCE.match(letter.headers.get("sep-source", ""))
    return (m["topic"], int(m["partition"]), int(m["offset"])) if m else None


def original_key(topology: Topology, topic: str, value: bytes) -> str | None:
    """The key the record had on ``topic`` (per the topology's key for it), or None."""
    try:
        kind = topology.topic(topic).key
        body = orjson.loads(value)
    except (KeyError, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    if kind == "submission_key":
        strategy, client = body.get("strategyId"), body.get("clientIntentId")
        if isinstance(strategy, str) and strategy and isinstance(client, str | None):
            return submission_key(strategy, client or None)
        return None
    field = {"strategy_id": "strategyId", "intent_id": "correlationId"}.get(kind)
    found = body.get(field) if field else None
    return found if isinstance(found, str) and found else None


def why_not(letter: DeadLetter, topology: Topology) -> str | None:
    """Why this dead letter may not be re-driven, or None if it may (its bytes' hash is checked
    again on the whole value when it is re-driven)."""
    if not PASSING.match(letter.reason):
        return "refused for what it holds, not for a passing reason: it would fail again"
    source = _source(letter)
    consumed = {t for stage in topology.stages for t in stage.inputs}
    if source is None or source[0] not in consumed:
        return "its source is not a topic a stage consumes"
    if letter.headers.get("sep-truncated") == "true" or letter.stored_bytes != int(
        letter.headers.get("sep-original-bytes", letter.stored_bytes) or 0
    ):
        return "only a prefix of its bytes was kept"
    if not letter.stored_bytes:
        return "no bytes were kept"
    if original_key(topology, source[0], letter.value) is None:
        return "its original key cannot be recovered from its bytes"
    return None


async def _partitions(kafka: str, timeout_s: float) -> set[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        described = await admin.describe_topics([DEADLETTER_TOPIC])
    finally:
        await admin.close()
    return {
        p["partition"]
        for t in described
        if t.get("error_code", 0) == 0
        for p in t.get("partitions", ())
    }


async def read_one(
    kafka: str, partition: int, offset: int, *, timeout_s: float = 5.0
) -> DeadLetter | None:
    """The dead letter at ``partition``/``offset``, its whole value, or None if absent."""
    tp = TopicPartition(DEADLETTER_TOPIC, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka, enable_auto_commit=False, request_timeout_ms=int(timeout_s * 1000)
    )
    await consumer.start()
    try:
        # Offsets of a partition that does not exist would wait out the request timeout.
        if partition not in await _partitions(kafka, timeout_s):
            return None
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not begin <= offset < end:
            return None
        consumer.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=1)
            for r in batch.get(tp, []):
                if r.offset == offset:
                    value = r.value or b""
                    return DeadLetter(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        (r.key or b"").decode("utf-8", "replace"),
                        value,
                        len(value),
                        {k: v.decode("utf-8", "replace") for k, v in r.headers or ()},
                    )
                if r.offset > offset:
                    return None
        raise TimeoutError(f"no record read at {DEADLETTER_TOPIC}/{partition}/{offset}")
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Redriven:
    event: dict[str, Any]
    """The ``deadletter.redriven`` event as recorded (wire envelope)."""


_INSERT = """
INSERT INTO operator_events (time, event_id, topic, correlation_id, causation_id, seq,
                             version, payload)
VALUES ($1, $2, $3, $4, NULL, 1, 1, $5::jsonb)
"""
_SELECT = (
    "SELECT time, event_id, topic, correlation_id, payload FROM operator_events WHERE topic = $1"
)


def _document(row: asyncpg.Record) -> dict[str, Any]:
    payload = row["payload"]
    return {
        "eventId": row["event_id"],
        "timestamp": row["time"].isoformat(),
        "topic": row["topic"],
        "correlationId": row["correlation_id"],
        "seq": 1,
        "payload": orjson.loads(payload) if isinstance(payload, str) else payload,
    }


class Redriver:
    """Re-drives dead letters and reads back which were re-driven (its own small pool)."""

    def __init__(self, pool: asyncpg.Pool, kafka: str, topology: Topology) -> None:
        self._pool = pool
        self._kafka = kafka
        self._topology = topology

    @classmethod
    async def connect(cls, dsn: str, kafka: str, topology: Topology) -> Redriver:
        # Operator actions are rare: no connection is held until one is needed.
        return cls(await asyncpg.create_pool(dsn, min_size=0, max_size=2), kafka, topology)

    async def close(self) -> None:
        await self._pool.close()

    def why_not(self, letter: DeadLetter) -> str | None:
        return why_not(letter, self._topology)

    async def redriven(
        self, places: list[tuple[int, int]]
    ) -> dict[tuple[int, int], dict[str, Any]]:
        """The re-drive events of these dead letters (partition, offset), where there are."""
        if not places:
            return {}
        rows = await self._pool.fetch(
            _SELECT + " AND (payload->'deadLetter'->>'partition')::int = ANY($2::int[]) "
            "AND (payload->'deadLetter'->>'offset')::bigint = ANY($3::bigint[])",
            REDRIVEN,
            [p for p, _ in places],
            [o for _, o in places],
        )
        out = {}
        for row in rows:
            doc = _document(row)
            dl = doc["payload"]["deadLetter"]
            out[(int(dl["partition"]), int(dl["offset"]))] = doc
        return {place: out[place] for place in places if place in out}

    async def redrive(self, partition: int, offset: int, *, operator: str, note: str) -> Redriven:
        letter = await read_one(self._kafka, partition, offset)
        if letter is None:
            raise RedriveError(
                "not_found", f"no dead letter at {DEADLETTER_TOPIC}/{partition}/{offset}"
            )
        refusal = self.why_not(letter)
        if refusal is None and hashlib.sha256(letter.value).hexdigest() != letter.headers.get(
            "sep-sha256"
        ):
            refusal = "its bytes do not match the SHA-256 recorded with them"
        if refusal is not None:
            raise RedriveError("not_redrivable", f"not re-driven: {refusal}")
        source = _source(letter)
        key = original_key(self._topology, source[0], letter.value) if source else None
        assert source is not None
        assert key is not None
        event_id = deterministic_ulid(
            letter.timestamp_ms, REDRIVEN, DEADLETTER_TOPIC, str(partition), str(offset)
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", event_id)
            before = await conn.fetchrow(_SELECT + " AND event_id = $2", REDRIVEN, event_id)
            if before is not None:
                raise RedriveError(
                    "already_redriven", "re-driven before: once only", event=_document(before)
                )
            placed = await self._produce(source[0], key, letter, partition, offset)
            at = datetime.now(UTC)
            payload = {
                "deadLetter": {
                    "topic": DEADLETTER_TOPIC,
                    "partition": partition,
                    "offset": offset,
                    "key": letter.key,
                    "reason": letter.reason,
                    "sha256": letter.headers.get("sep-sha256", ""),
                    "bytes": letter.stored_bytes,
                },
                "source": {"topic": source[0], "partition": source[1], "offset": source[2]},
                "redrivenTo": {
                    "topic": placed[0],
                    "partition": placed[1],
                    "offset": placed[2],
                    "key": key,
                    "timestamp": placed[3],
                },
                "operator": operator,
                "note": note,
            }
            by_intent = self._topology.topic(source[0]).key == "intent_id"
            correlation = (
                letter.headers.get("sep-correlation-id")
                or (key if by_intent else "")
                or f"{DEADLETTER_TOPIC}/{partition}/{offset}"
            )
            row = await conn.fetchrow(
                _INSERT + " RETURNING time, event_id, topic, correlation_id, payload",
                at,
                event_id,
                REDRIVEN,
                correlation,
                orjson.dumps(payload).decode(),
            )
        assert row is not None  # RETURNING a row just inserted
        return Redriven(_document(row))

    async def _produce(
        self, topic: str, key: str, letter: DeadLetter, partition: int, offset: int
    ) -> tuple[str, int, int, int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._kafka,
            acks="all",
            max_request_size=2 << 20,
            request_timeout_ms=10_000,
        )
        await producer.start()
        try:
            # A fresh timestamp: ingest measures a submission's age from it.
            stamp = now_ms()
            meta = await producer.send_and_wait(
                topic,
                letter.value,
                key=key.encode(),
                timestamp_ms=stamp,
                headers=[(HEADER, f"{DEADLETTER_TOPIC}/{partition}/{offset}".encode())],
            )
            return meta.topic, meta.partition, meta.offset, stamp
        finally:
            await producer.stop()
