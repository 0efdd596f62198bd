"""A small producer for intents: what ``sep submit``, ``sep demo`` and the benchmarks use.

Any Kafka producer works; this one also predicts the intent id ingest will assign, since
the id is derived from (record timestamp, strategy id, client intent id) and aligned to the
record's partition (``pipeline.intent_ids``): it keys each submission by
``submission_key``, so Kafka's default partitioner says where it lands.  The timestamp is
the record's CreateTime, which the producer sets: the input topic must keep it (the broker's
default ``message.timestamp.type=CreateTime``; with ``LogAppendTime`` no producer can know
the id in advance).

``submit_once`` is the way to answer a submitter with an id that will exist: it claims the
dedupe key before producing, as ingest will, so a duplicate is answered with the original
intent's id and never produced.

Given the topology's ``SubmitLanes`` (``lanes.submit`` in ``topology.yaml``), the producer
writes each submission to the input lane topic of its score
(``pipeline.priority.submit_lanes``); without, or for bytes it cannot read, the plain
input topic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from pipeline.intent_ids import INPUT_TOPIC, predicted_intent_id, submission_key
from pipeline.models.intent import IntentSubmission
from pipeline.store.dedupe import DedupeStore, dedupe_key

if TYPE_CHECKING:
    from pipeline.topology.models import Topology

__all__ = [
    "INPUT_TOPIC",
    "IntentProducer",
    "LaneChooser",
    "Submitted",
    "predicted_intent_id",
    "submit_once",
]


class LaneChooser(Protocol):
    """Which input topic a submission goes to (``pipeline.priority.submit_lanes.SubmitLanes``
    for a topology's lanes; a protocol here, so the client does not import the scorer)."""

    plain: str
    """The unlabelled input topic."""

    def topic_of(self, submission: IntentSubmission) -> str: ...

    def topic_of_body(self, body: Mapping[str, Any]) -> str: ...


class IntentProducer:
    def __init__(
        self,
        bootstrap: str,
        *,
        linger_ms: int = 2,
        lanes: LaneChooser | None = None,
        topology: Topology | None = None,
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=linger_ms, acks="all", max_batch_size=256 * 1024
        )
        self.lanes = lanes
        """Chooses each submission's input lane topic (None: the plain input topic)."""
        self.topology = topology
        """Whose partition counts the ids it predicts follow (None: the default topology)."""

    def topic_of(self, submission: IntentSubmission) -> str:
        """The topic ``submission`` is produced to."""
        return INPUT_TOPIC if self.lanes is None else self.lanes.topic_of(submission)

    async def __aenter__(self) -> IntentProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(
        self,
        body: dict[str, Any] | bytes,
        *,
        key: str | None = None,
        timestamp_ms: int | None = None,
        topic: str | None = None,
    ) -> tuple[int, Any]:
        """Queue one submission; returns (timestamp_ms, delivery future).  ``topic``: the
        topic chosen already (``topic_of``); else a dict's lane, bytes to the plain topic."""
        stamp = timestamp_ms if timestamp_ms is not None else time.time_ns() // 1_000_000
        value = body if isinstance(body, bytes) else orjson.dumps(body)
        if key is None and isinstance(body, dict):
            client_id = body.get("clientIntentId")
            key = submission_key(
                str(body.get("strategyId", "")), None if client_id is None else str(client_id)
            )
        if topic is None:
            lanes = self.lanes
            if lanes is None:
                topic = INPUT_TOPIC
            else:
                topic = lanes.topic_of_body(body) if isinstance(body, dict) else lanes.plain
        future = await self._producer.send(
            topic, value, key=(key or "").encode(), timestamp_ms=stamp
        )
        return stamp, future

    async def flush(self) -> None:
        await self._producer.flush()


@dataclass(frozen=True)
class Submitted:
    intent_id: str
    """The new intent's id, or for a duplicate the id of the intent that has its key."""
    duplicate: bool
    timestamp_ms: int
    """The record's timestamp (a duplicate: the one it would have had; nothing was sent)."""


async def submit_once(
    producer: IntentProducer,
    dedupe: DedupeStore,
    submission: IntentSubmission,
    *,
    timestamp_ms: int,
) -> Submitted:
    """Produce ``submission`` unless its (strategy id, client intent id) is taken already.

    The record is produced with ``timestamp_ms`` as its timestamp, so the id claimed here is
    the id ingest will derive from the record and claim again (getting it back).  If the
    send fails, the claim is released, so a retry is not a "duplicate" of nothing.
    """
    client_id = submission.client_intent_id
    if client_id is None:
        raise ValueError("submit_once needs a client intent id to claim")
    key = dedupe_key(submission.strategy_id, client_id)
    intent_id = predicted_intent_id(
        timestamp_ms, submission.strategy_id, client_id, topology=producer.topology
    )
    [owner] = await dedupe.claim([(key, intent_id)])
    if owner != intent_id:
        return Submitted(owner, duplicate=True, timestamp_ms=timestamp_ms)
    try:
        _, delivery = await producer.send(
            submission.to_wire(),
            key=submission_key(submission.strategy_id, client_id),
            timestamp_ms=timestamp_ms,
            topic=producer.topic_of(submission),
        )
        await delivery
    except BaseException:
        # Released even when the record may have been written after all (a timeout): then
        # ingest claims the key for it, or a retry's claim wins and ingest drops it as a
        # duplicate; either way the id answered is the one that exists.
        await dedupe.release(key, intent_id)
        raise
    return Submitted(intent_id, duplicate=False, timestamp_ms=timestamp_ms)
