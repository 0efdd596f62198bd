"""Every patch of a library's private API, in one place, checked against the version it was
written for.  ``check()`` refuses to start on any other version: a private API can change in a
patch release, and a silent mismatch here would cost latency or records, not an error.

**The consumer's fetch wait: short while records are buffered, long when everything is idle.**
aiokafka keeps one fetch in flight per broker, covering every partition that has no
unconsumed records.  A partition whose records were just taken is not in that request, so its
next records wait until the in-flight fetch returns: when any of *its* partitions gets data,
or after the fetch's max wait.  A short wait (``SEP_FETCH_MAX_WAIT_MS``, 10 ms) keeps hops
fast but costs a fetch every 10 ms per consumer when nothing happens (measured: two idle
workers made the broker burn 0.19 of a core and each worker 0.14-0.17).  Yet when *no*
partition has buffered records (and none is paused or awaiting an offset reset), the next
request covers every assigned partition, so new data on any of them completes it at once: a
long wait then costs no latency at all.  So the wait is chosen per request: the idle wait
(``SEP_FETCH_IDLE_WAIT_MS``, 500 ms) when the request will cover everything, the short one
otherwise.  aiokafka builds its fetcher inline in ``start`` with no factory to override, so
the fetcher's class is swapped after start (same fields, only behaviour changes).

**A record into its partition's open batch, acknowledged with the batch.**  ``producer.send``
costs, per record, a coroutine, a metadata check, a future, a ``RecordMetadata`` built when the
broker answers, and a callback when that future is set (one loop turn each for the runtime's
gather): a fifth of the producer side of a worker, for an offset the runtime never reads.  It
only needs to know when *all* of a pass's records are durable.  ``append_to_open_batch`` puts
the record where ``send`` would (the partition's last batch still waiting in the accumulator)
and returns that batch's own future, set once when the broker acknowledges the batch, or fails
it (every record of a batch shares its fate).  A closed or full batch, a closed producer or a
topic whose metadata is not known yet return None: the caller then goes through ``send``,
which waits for room and metadata as it always did.  A full batch is followed by a fresh one
in the same partition's queue, up to ``MAX_QUEUED_BATCHES`` (a pass appends without yielding,
so the sender cannot drain the first meanwhile: in a flat-out pipeline 18 % of
sep.executions' records found it full, and each went through ``send``'s wait for the drain).
The accumulator's queue per partition is FIFO, the sender takes its head only, sends one
batch per partition at a time (a partition with a request in flight is muted) and gives the
idempotent producer's sequence numbers when it takes a batch, so order per partition holds.

**Consumed records built as the stages' ``Record``, or not built at all.**  aiokafka builds
a ``ConsumerRecord`` (eleven fields, the headers copied, the sizes measured) per record, and
the runtime built a ``Record`` from it: two objects per record, a tenth of a worker's runtime
CPU.  A consumer made with ``records="stage"`` has its fetched partitions' records built as
``Record`` straight away; with ``records="raw"`` (the followers of whole topics, which read
only a record's value and offset: the risk feed reads every intent's events in every worker)
it returns the record batch's own record objects (``offset``, ``timestamp``, ``key``,
``value``, ``headers``), built anyway while a batch is read.  The class of each partition's
buffer (``PartitionRecords``) is swapped when the fetch response is parsed, before any
record of it is read (same fields, only ``_consumer_record`` differs).

**Fetch responses parsed in Rust, their empty partitions left out.**  A worker's consumer holds
every partition of its groups' topics (28 on two workers) and, while records flow, fetches a
few hundred times a second; each ``FetchResponse`` lists every partition, most of them empty.
aiokafka parses it field by field in Python (~150 us for 28 partitions) and then visits every
partition again in ``_proc_fetch_request``.  ``install_fetch_codec`` makes
``FetchResponse_v11.decode`` the Rust parser (``pipeline.ops.decode_fetch_v11``), which builds
only the partitions with records, an error or aborted transactions.  What the left-out ones
would have done in aiokafka: refresh the partition's high watermark and last stable offset
(both the offset fetched from, as nothing is past it) and the time of its last fetch; so a
partition's ``highwater`` is the one its last fetch with records brought.  The broker answers
v11 to aiokafka 0.14 (the highest it asks for); an older broker's lower versions keep
aiokafka's own parse.

**Fetch requests written by ``struct``.**  The request side of the same cycle: aiokafka encodes
a ``FetchRequest`` field by field through its generic schema (~60 us for 28 partitions);
``_encode_fetch_v11`` packs each partition with one precompiled ``struct`` (~10 us), byte for
byte the same (the tests hold the two equal).

**Gathering, for followers that may lag a little.**  A follower reading busy topics whole
(the risk feed reads every intent's events in every worker) completes a fetch on the first
new record, so while records flow it sends a fetch request every few milliseconds, each a
response to parse and a request the broker serves.  With ``Gathering(min_bytes, wait_ms)``,
while the last fetch brought records the next asks the broker to hold it until ``min_bytes``
have gathered or ``wait_ms`` has passed (at most 1000 / wait_ms fetches a second); a fetch
that brings nothing puts the consumer back on the waits above, so an idle follower costs what
it did.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Literal

import aiokafka
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.fetcher import Fetcher, FetchResult, PartitionRecords
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.protocol.fetch import FetchRequest_v11, FetchResponse_v11
from aiokafka.structs import TopicPartition

from pipeline.ops import decode_fetch_v11
from pipeline.stages.base import Record

WRITTEN_FOR = {"aiokafka": ("0.14.",)}
"""Library -> version prefixes these patches were written and tested against."""

FETCH_MAX_WAIT_MS = 10
"""Default busy wait (``Settings.fetch_max_wait_ms``, ``SEP_FETCH_MAX_WAIT_MS``)."""
FETCH_IDLE_WAIT_MS = 500
"""Default idle wait (``Settings.fetch_idle_wait_ms``, ``SEP_FETCH_IDLE_WAIT_MS``)."""
MAX_QUEUED_BATCHES = 4
"""Batches of one partition the fast path may queue (4 x 256 KiB) before ``send`` waits."""


@dataclass(frozen=True)
class Gathering:
    """Fetch sizes while records flow (see the module docstring)."""

    min_bytes: int = 64 * 1024
    wait_ms: int = 25


class UnsupportedLibraryVersion(RuntimeError):
    """A patched library is at a version the patches were not written for."""


def check() -> None:
    """Refuse to run on a library version the patches below were not written for."""
    version = aiokafka.__version__
    if not version.startswith(WRITTEN_FOR["aiokafka"]):
        raise UnsupportedLibraryVersion(
            f"aiokafka {version} is installed, but pipeline/runtime/delivery/patches.py was "
            f"written for {', '.join(WRITTEN_FOR['aiokafka'])}x: check the fetcher's private "
            "_get_actions_per_node/_proc_fetch_request/_records/_fetch_max_wait_ms/"
            "_fetch_min_bytes, PartitionRecords._consumer_record, FetchResult."
            "_partition_records and FetchError, the producer's _message_accumulator "
            "(_batches, _append_batch, create_builder), MessageBatch (_builder, future) and "
            "the client's _topics/add_topic, "
            "then update WRITTEN_FOR"
        )
    for method in ("_get_actions_per_node", "_proc_fetch_request"):
        if not hasattr(Fetcher, method):
            raise UnsupportedLibraryVersion(f"aiokafka's Fetcher has no {method}")
    for method in ("_append_batch", "create_builder"):
        if not hasattr(MessageAccumulator, method):
            raise UnsupportedLibraryVersion(f"aiokafka's MessageAccumulator has no {method}")
    if not hasattr(PartitionRecords, "_consumer_record"):
        raise UnsupportedLibraryVersion("aiokafka's PartitionRecords has no _consumer_record")
    if not hasattr(AIOKafkaClient, "add_topic"):
        raise UnsupportedLibraryVersion("aiokafka's client has no add_topic")
    if _fetch_v11_layout() != FETCH_V11_LAYOUT:
        raise UnsupportedLibraryVersion(
            f"aiokafka's FetchResponse_v11 is laid out as {_fetch_v11_layout()}, not as the "
            f"Rust decoder reads it ({FETCH_V11_LAYOUT})"
        )
    if _fetch_request_v11_layout() != FETCH_REQUEST_V11_LAYOUT:
        raise UnsupportedLibraryVersion(
            f"aiokafka's FetchRequest_v11 is laid out as {_fetch_request_v11_layout()}, not "
            f"as _encode_fetch_v11 writes it ({FETCH_REQUEST_V11_LAYOUT})"
        )


FETCH_V11_LAYOUT = (
    ("throttle_time_ms", "error_code", "session_id", "topics"),
    ("topics", "partitions"),
    (
        "partition",
        "error_code",
        "highwater_offset",
        "last_stable_offset",
        "log_start_offset",
        "aborted_transactions",
        "preferred_read_replica",
        "message_set",
    ),
    ("producer_id", "first_offset"),
)
"""The field names of aiokafka's ``FetchResponse_v11``, level by level, that
``decode_fetch_v11`` returns in this order."""


def _fetch_v11_layout() -> tuple[tuple[str, ...], ...]:
    topics = FetchResponse_v11.SCHEMA.fields[3].array_of
    partitions = topics.fields[1].array_of
    aborted = partitions.fields[5].array_of
    return (FetchResponse_v11.SCHEMA.names, topics.names, partitions.names, aborted.names)


fetch_decodes = 0
"""Fetch responses parsed by ``decode_fetch_v11`` in this process (the tests check that a
consumer against the real broker goes through it)."""


def _decode_fetch_v11(cls: type[FetchResponse_v11], data: BytesIO | bytes) -> FetchResponse_v11:
    global fetch_decodes
    fetch_decodes += 1
    # The connection hands the response past its header, as a BytesIO.
    raw = data.read() if isinstance(data, BytesIO) else data
    return cls(*decode_fetch_v11(raw))


FETCH_REQUEST_V11_LAYOUT = (
    (
        "replica_id",
        "max_wait_time",
        "min_bytes",
        "max_bytes",
        "isolation_level",
        "session_id",
        "session_epoch",
        "topics",
        "forgotten_topics_data",
        "rack_id",
    ),
    ("topic", "partitions"),
    ("partition", "current_leader_epoch", "fetch_offset", "log_start_offset", "max_bytes"),
    ("topic", "partitions"),
)
"""The field names of aiokafka's ``FetchRequest_v11``, level by level, that
``_encode_fetch_v11`` writes in this order."""


def _fetch_request_v11_layout() -> tuple[tuple[str, ...], ...]:
    topics = FetchRequest_v11.SCHEMA.fields[7].array_of
    forgotten = FetchRequest_v11.SCHEMA.fields[8].array_of
    return (
        FetchRequest_v11.SCHEMA.names,
        topics.names,
        topics.fields[1].array_of.names,
        forgotten.names,
    )


_HEAD = struct.Struct(">iiiibii")
_PARTITION = struct.Struct(">iiqqi")
_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")


def _string(text: str | None) -> bytes:
    if text is None:
        return b"\xff\xff"
    data = text.encode("utf-8")
    return _I16.pack(len(data)) + data


def _encode_fetch_v11(request: FetchRequest_v11) -> bytes:
    """``request`` as aiokafka's schema writes it (see the module docstring)."""
    fields = request.__dict__
    parts = [
        _HEAD.pack(
            fields["replica_id"],
            fields["max_wait_time"],
            fields["min_bytes"],
            fields["max_bytes"],
            fields["isolation_level"],
            fields["session_id"],
            fields["session_epoch"],
        )
    ]
    for key in ("topics", "forgotten_topics_data"):
        topics = fields[key]
        parts.append(_I32.pack(len(topics)))
        for topic, partitions in topics:
            parts.append(_string(topic))
            parts.append(_I32.pack(len(partitions)))
            if key == "topics":
                parts += [_PARTITION.pack(*partition) for partition in partitions]
            else:
                parts += [_I32.pack(partition) for partition in partitions]
    parts.append(_string(fields["rack_id"]))
    return b"".join(parts)


def install_fetch_codec() -> None:
    """Make ``FetchResponse_v11.decode`` the Rust parser and ``FetchRequest_v11.encode`` the
    ``struct`` writer (see the module docstring); once per process, refusing an aiokafka whose
    fetch messages are laid out otherwise."""
    if getattr(FetchResponse_v11.decode, "__func__", None) is _decode_fetch_v11:
        return
    check()  # the layouts among the rest: raises, naming what differs
    FetchResponse_v11.decode = classmethod(_decode_fetch_v11)
    FetchRequest_v11.encode = _encode_fetch_v11


def track_topic(producer: aiokafka.AIOKafkaProducer, topic: str) -> None:
    """Keep ``topic`` in the producer's metadata for good (the fast path needs it).

    aiokafka's client refreshes metadata for the topics in its ``_topics`` set, or for every
    topic while that set is empty.  ``producer.send`` adds a topic to it only when the
    metadata it has lacks the topic, and re-adds it on the next send if a refresh dropped
    it.  So once any topic is added (the first send to a topic created after the producer
    started, like a new changelog), refreshes fetch only the added ones, and a topic known
    from the first, complete metadata drops out.  ``append_to_open_batch`` never calls
    ``send``: its records then wait for a leader that never comes, and the batch fails after
    ``request_timeout_ms`` (seen: a lane worker's every output failed 30 s into a run).
    Adding each topic the fast path serves keeps it in every refresh."""
    client = producer.client
    if topic not in client._topics:
        client.add_topic(topic)


def append_to_open_batch(
    producer: aiokafka.AIOKafkaProducer,
    tp: TopicPartition,
    key: bytes,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
) -> asyncio.Future[Any] | None:
    """The record appended to ``tp``'s open batch; that batch's future (see the module
    docstring), or None when the caller must use ``producer.send``."""
    accumulator = producer._message_accumulator
    if accumulator._closed or accumulator._exception is not None:
        return None
    pending = accumulator._batches.get(tp)
    batch = pending[-1] if pending else accumulator._append_batch(accumulator.create_builder(), tp)
    if batch._builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
        # Full (or closed): a fresh batch behind it, while the partition's queue is short;
        # else ``send`` waits for the sender to drain one.  (The caller's records are far
        # smaller than a batch: a fresh one takes it.)
        if len(accumulator._batches.get(tp, ())) >= MAX_QUEUED_BATCHES:
            return None
        batch = accumulator._append_batch(accumulator.create_builder(), tp)
        if batch._builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            return None  # pragma: no cover - an empty batch refused it; the sender skips it
    future: asyncio.Future[Any] = batch.future
    return future


def covers_every_partition(buffered: bool, states: Iterable[Any]) -> bool:
    """Whether the next fetch request will include every assigned partition.

    ``buffered``: some partition still has fetched records the application has not taken
    (aiokafka leaves it out of the request until they are).  ``states``: the partitions'
    aiokafka states; a paused one, or one without a valid position (awaiting an offset
    reset), is left out too.
    """
    if buffered:
        return False
    return all(state.has_valid_position and not state.paused for state in states)


def fetch_sizes(
    everything: bool,
    flowing: bool,
    busy_wait_ms: int,
    idle_wait_ms: int,
    gathering: Gathering | None,
) -> tuple[int, int]:
    """The next fetch request's (max wait ms, min bytes).

    ``everything``: the request covers every assigned partition (``covers_every_partition``);
    ``flowing``: the last fetch brought records.
    """
    if gathering is not None and flowing:
        return gathering.wait_ms, gathering.min_bytes
    return (idle_wait_ms if everything else busy_wait_ms), 1


class AdaptiveWaitFetcher(Fetcher):  # type: ignore[misc]
    """aiokafka's fetcher, choosing each request's max wait and min bytes (see the module
    docstring)."""

    busy_wait_ms: int = FETCH_MAX_WAIT_MS
    idle_wait_ms: int = FETCH_IDLE_WAIT_MS
    gathering: Gathering | None = None
    flowing: bool = False

    def _get_actions_per_node(self, assignment: Any) -> Any:
        # Read by the parent when it builds the FetchRequest in this same call.
        everything = covers_every_partition(
            bool(self._records), (assignment.state_value(tp) for tp in assignment.tps)
        )
        self._fetch_max_wait_ms, self._fetch_min_bytes = fetch_sizes(
            everything, self.flowing, self.busy_wait_ms, self.idle_wait_ms, self.gathering
        )
        return super()._get_actions_per_node(assignment)

    records_class: type[PartitionRecords] | None = None

    async def _proc_fetch_request(self, assignment: Any, node_id: Any, request: Any) -> bool:
        # True when the response put records in the buffer (the parent's own signal).
        got = bool(await super()._proc_fetch_request(assignment, node_id, request))
        self.flowing = got
        if got and self.records_class is not None:
            # The buffers the parent just made, before anything reads them (no await since).
            for result in self._records.values():
                # A partition's failed fetch is buffered as a FetchError (no records): e.g.
                # a record larger than the fetch size, a topic not authorised.  getmany raises
                # it; here it is skipped (reading its records failed the fetch task, and
                # aiokafka stopped fetching for good).
                if type(result) is not FetchResult:
                    continue
                records = result._partition_records
                if type(records) is PartitionRecords:
                    records.__class__ = self.records_class
        return got


class StageRecords(PartitionRecords):  # type: ignore[misc]
    """A fetched partition's records, each built as a ``Record`` (see the module docstring)."""

    def _consumer_record(self, tp: TopicPartition, record: Any) -> Record:
        value = record.value
        return Record(
            tp.topic,
            tp.partition,
            record.offset,
            record.timestamp,
            record.key,
            value if value is not None else b"",  # a tombstone: no stage input has one
        )


class RawRecords(PartitionRecords):  # type: ignore[misc]
    """A fetched partition's records as the record batch's own objects (see the module
    docstring)."""

    def _consumer_record(self, tp: TopicPartition, record: Any) -> Any:
        return record


RECORDS: dict[str, type[PartitionRecords] | None] = {
    "consumer": None,
    "stage": StageRecords,
    "raw": RawRecords,
}
"""What ``getmany`` returns: aiokafka's ``ConsumerRecord``s, ``Record``s, the batches' own."""


class AdaptiveWaitConsumer(aiokafka.AIOKafkaConsumer):  # type: ignore[misc]
    """An aiokafka consumer whose fetch waits adapt (see the module docstring).

    ``fetch_max_wait_ms`` given by the caller caps the busy wait; ``idle_wait_ms`` is the wait
    of a request that covers every partition.  ``records``: what ``getmany`` returns
    (``RECORDS``; other than ``"consumer"``, the raw bytes: no deserializers).
    """

    def __init__(
        self,
        *topics: Any,
        idle_wait_ms: int = FETCH_IDLE_WAIT_MS,
        gathering: Gathering | None = None,
        records: Literal["consumer", "stage", "raw"] = "consumer",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("fetch_max_wait_ms", FETCH_MAX_WAIT_MS)
        if RECORDS[records] is not None and (
            kwargs.get("key_deserializer") or kwargs.get("value_deserializer")
        ):
            raise ValueError(f"records={records!r} returns the raw bytes: no deserializers")
        install_fetch_codec()
        self._idle_wait_ms = max(idle_wait_ms, kwargs["fetch_max_wait_ms"])
        self._gathering = gathering
        self._records_class = RECORDS[records]
        super().__init__(*topics, **kwargs)

    async def start(self) -> None:
        await super().start()
        fetcher = self._fetcher
        # The fetch routine is already running, but it looks the method up on every
        # iteration: from its next request on, the waits adapt.  Same fields, same layout:
        # only the class's behaviour changes.
        fetcher.__class__ = AdaptiveWaitFetcher
        fetcher.busy_wait_ms = self._fetch_max_wait_ms
        fetcher.idle_wait_ms = self._idle_wait_ms
        fetcher.gathering = self._gathering
        fetcher.records_class = self._records_class
