"""Where outputs go: the Kafka producer (``memory.MemoryTopics`` is the in-memory sink).
A ``Sink`` returns an acknowledgement.

``send`` hands a record over and returns an awaitable that completes when the record is
durable (the broker acknowledged it, or the in-memory log holds it).  The runtime gathers a
batch's acknowledgements and only then settles the batch's inputs (see ``ledger``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from pipeline import limits
from pipeline.models.events import Event
from pipeline.ops import kafka_partition
from pipeline.runtime.delivery.patches import append_to_open_batch, track_topic
from pipeline.stages.base import Output

Headers = tuple[tuple[str, bytes], ...]


class Sink(Protocol):
    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers = (),
        event: Event | None = None,
    ) -> Awaitable[Any]:
        """Hand a record over (a None value is a tombstone); await the result for its
        acknowledgement.  ``event``: the event ``value`` encodes, when the stage built one (a
        sink in the same process as its readers may hand it over with the record; a broker
        only ever gets the bytes)."""
        ...


async def send_output(sink: Sink, output: Output, partition: int | None = None) -> Awaitable[Any]:
    return await sink.send(
        output.topic,
        output.key,
        output.value,
        partition=partition,
        headers=output.headers,
        event=output.event,
    )


PRODUCER_LINGER_MS = 1
"""How long the producer waits to fill a batch.  1 ms: a hop's latency matters more than a
few more records per request, and under load batches fill while the previous one is sent."""


FAST_PATH_MAX_BYTES = 64 * 1024
"""Records up to this size go straight into their partition's open batch; larger ones through
``producer.send``, whose size check refuses one over ``max_request_size`` with its own error
(appended to a fresh batch, it would fail that batch at the broker instead)."""


class KafkaSink:
    """One aiokafka producer for every output of a worker (all stages, all tables)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        linger_ms: int = PRODUCER_LINGER_MS,
        client_id: str = "sep-worker",
        partitions: Mapping[str, int] | None = None,
    ) -> None:
        self._partitions = dict(partitions or {})
        """Partition counts of the topology's topics: records to them are placed here with
        the Rust partitioner (the producer's own murmur2 is Python, ~12 us a record)."""
        self._options: dict[str, Any] = dict(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            # Idempotent: a retried request is not written twice and order per partition
            # holds across retries (one intent's events must stay in order).
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
            max_request_size=limits.PRODUCER_MAX_REQUEST_BYTES,
            request_timeout_ms=30_000,
        )
        self._producer: AIOKafkaProducer | None = None
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        """Partitions this sink has sent to through ``producer.send`` once (so their topic's
        metadata is known): later records go straight into the open batch."""
        self.sent = 0

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaSink used before start()")
        return self._producer

    async def start(self) -> None:
        """Start the producer (once: the market publisher may need it before the stages).
        Built here, not in ``__init__``: aiokafka needs the running loop."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(**self._options)
            await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            self._tps.clear()  # a producer started again learns its metadata again
            await producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers = (),
        event: Event | None = None,
    ) -> Awaitable[Any]:
        self.sent += 1
        if partition is None and (count := self._partitions.get(topic)):
            partition = kafka_partition(key, count)
        if (
            partition is not None
            and (tp := self._tps.get((topic, partition))) is not None
            and len(key) + len(value or b"") <= FAST_PATH_MAX_BYTES
        ):
            # The batch's acknowledgement stands for this record's (patches.py explains).
            ack = append_to_open_batch(self.producer, tp, key, value, list(headers))
            if ack is not None:
                return ack
        future = await self.producer.send(
            topic, value, key=key, partition=partition, headers=list(headers) or None
        )
        if partition is not None and (topic, partition) not in self._tps:
            track_topic(self.producer, topic)  # the fast path never refreshes it (patches.py)
            self._tps[(topic, partition)] = TopicPartition(topic, partition)
        return future  # type: ignore[no-any-return]
