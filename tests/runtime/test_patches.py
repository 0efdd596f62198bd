"""The adaptive fetch wait: the rule, and against the real broker that a long idle wait
neither delays records nor lets a partition's next records wait behind it; gathering: fewer
fetches while records flow, the idle behaviour back when they stop; a consumer that builds
the stages' Records itself; fetch responses parsed in Rust, their empty partitions left out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Literal

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.consumer.fetcher import Fetcher, FetchError, FetchResult, PartitionRecords
from aiokafka.errors import RecordTooLargeError
from aiokafka.protocol.fetch import FetchRequest_v11, FetchResponse_v11
from hypothesis import given
from hypothesis import strategies as st

from pipeline.runtime.delivery import patches
from pipeline.runtime.delivery.patches import (
    AdaptiveWaitConsumer,
    Gathering,
    covers_every_partition,
    fetch_sizes,
    install_fetch_codec,
)
from pipeline.stages.base import Record
from tests.kafka_support import new_topic

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


def test_a_flowing_gathering_consumer_asks_for_bytes_else_the_adaptive_waits_apply() -> None:
    gathering = Gathering(min_bytes=4096, wait_ms=30)
    assert fetch_sizes(True, True, 10, 500, gathering) == (30, 4096)
    assert fetch_sizes(False, True, 10, 500, gathering) == (30, 4096)
    assert fetch_sizes(True, False, 10, 500, gathering) == (500, 1)
    assert fetch_sizes(False, False, 10, 500, gathering) == (10, 1)
    assert fetch_sizes(False, True, 10, 500, None) == (10, 1)


async def _consumer(
    bootstrap: str, topic: str, partitions: int, gathering: Gathering | None = None
) -> AdaptiveWaitConsumer:
    consumer = AdaptiveWaitConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        idle_wait_ms=LONG_IDLE_WAIT_MS,
        gathering=gathering,
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
    topic = await new_topic(kafka_bootstrap, "test.fetchwait", 4)
    consumer = await _consumer(kafka_bootstrap, topic, 4)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        # The producer's first send to a new topic waits for its metadata and leaders (over a
        # second on a loaded machine, seen in CI): not what is measured here, so done first.
        for partition in range(4):
            await producer.send_and_wait(topic, b"warm", partition=partition)
        taken = 0
        while taken < 4:
            taken += sum(len(b) for b in (await consumer.getmany(timeout_ms=500)).values())
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
    topic = await new_topic(kafka_bootstrap, "test.fetchwait", 4)
    consumer = await _consumer(kafka_bootstrap, topic, 4)
    fetches = _count_fetches(consumer)
    try:
        await consumer.getmany(timeout_ms=200)
        before = fetches[0]
        await asyncio.sleep(2.0)
        # A 10 ms wait would have sent ~200 fetches; the idle wait allows one or two.
        assert fetches[0] - before <= 2
    finally:
        await consumer.stop()


def _count_fetches(consumer: AdaptiveWaitConsumer) -> list[int]:
    """A one-element list counting the consumer's fetch requests from now on."""
    fetches = [0]
    client: Any = consumer._client
    send = client.send

    async def counting_send(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        fetches[0] += type(request).__name__.startswith("FetchRequest")
        return await send(node_id, request, *args, **kwargs)

    client.send = counting_send
    return fetches


async def _drain(consumer: AdaptiveWaitConsumer, until: asyncio.Event, counts: list[int]) -> None:
    while not until.is_set():
        batch = await consumer.getmany(timeout_ms=50)
        counts[0] += sum(len(m) for m in batch.values())


@pytest.mark.services
async def test_a_gathering_consumer_fetches_less_while_records_flow_and_idles_after(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap, "test.fetchwait", 4)
    plain = await _consumer(kafka_bootstrap, topic, 4)
    gathering = await _consumer(kafka_bootstrap, topic, 4, Gathering(min_bytes=1 << 20, wait_ms=50))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks=1, linger_ms=0)
    await producer.start()
    done = asyncio.Event()
    received = {"plain": [0], "gathering": [0]}
    try:
        for consumer in (plain, gathering):
            await consumer.getmany(timeout_ms=200)
        fetches = {"plain": _count_fetches(plain), "gathering": _count_fetches(gathering)}
        readers = [
            asyncio.create_task(_drain(plain, done, received["plain"])),
            asyncio.create_task(_drain(gathering, done, received["gathering"])),
        ]
        # ~2 s of a record every ~5 ms, spread over the partitions (longer on a loaded
        # machine: the bound below follows the time it took).
        started = time.monotonic()
        for i in range(400):
            await producer.send(topic, b"x" * 100, partition=i % 4)
            await asyncio.sleep(0.005)
        await producer.flush()
        flowed_s = time.monotonic() - started
        sent_while_flowing = {k: v[0] for k, v in fetches.items()}
        await asyncio.sleep(1.0)
        done.set()
        await asyncio.gather(*readers)
        assert received == {"plain": [400], "gathering": [400]}
        # A fetch per ~50 ms at most while flowing (~40 in 2 s, with slack for the machine),
        # where the plain consumer completes one on nearly every record.
        assert sent_while_flowing["gathering"] <= 1.5 * flowed_s / 0.050
        assert sent_while_flowing["plain"] > 2 * sent_while_flowing["gathering"]
        # Idle again: back on the long idle wait, one or two fetches in the last second.
        assert fetches["gathering"][0] - sent_while_flowing["gathering"] <= 3
        # ...and a new record is not held for min_bytes: it arrives at once.
        assert await _received_within(gathering, producer, topic, 1) < 1.5
    finally:
        await producer.stop()
        await plain.stop()
        await gathering.stop()


@pytest.mark.services
@pytest.mark.parametrize("kind", ["stage", "raw"])
async def test_a_consumer_of_stage_or_raw_records_returns_their_bytes_and_positions(
    kafka_bootstrap: str, kind: Literal["stage", "raw"]
) -> None:
    topic = await new_topic(kafka_bootstrap, "test.records", 2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, b"v%d" % i, key=b"k%d" % i, partition=1)
        await producer.send_and_wait(topic, None, key=b"gone", partition=1, timestamp_ms=1234)
    finally:
        await producer.stop()
    consumer = AdaptiveWaitConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        records=kind,
    )
    await consumer.start()
    tp = TopicPartition(topic, 1)
    consumer.assign([tp])
    got: list[Any] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < 6:
                got += (await consumer.getmany(timeout_ms=500, max_records=4)).get(tp, [])
        assert await consumer.position(tp) == 6  # positions move as with ConsumerRecords
    finally:
        await consumer.stop()
    assert [(r.offset, r.key, r.value) for r in got[:5]] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(5)
    ]
    assert (got[5].offset, got[5].key) == (5, b"gone")
    if kind == "stage":
        assert all(type(r) is Record for r in got)
        assert {(r.topic, r.partition) for r in got} == {(topic, 1)}
        assert (got[5].value, got[5].timestamp_ms) == (b"", 1234)  # a tombstone: b"" here
    else:
        assert (got[5].value, got[5].timestamp) == (None, 1234)


async def test_a_failed_partition_among_fetched_ones_does_not_fail_the_fetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A response that buffered records for one partition and an error for another (a record
    larger than the fetch size, a topic not authorised): the records are still built as
    Records, and the error stays buffered for ``getmany`` to raise (reading records off the
    error failed aiokafka's fetch task, which then fetched no more)."""
    ok, failed = TopicPartition("t", 0), TopicPartition("t", 1)
    records = PartitionRecords(ok, b"", None, 0, None, None, False, None)
    error = FetchError(error=RecordTooLargeError("too large"), backoff=0)

    async def parent(self: Fetcher, assignment: Any, node_id: Any, request: Any) -> bool:
        self._records[ok] = FetchResult(ok, assignment=None, partition_records=records, backoff=0)
        self._records[failed] = error
        return True

    monkeypatch.setattr(Fetcher, "_proc_fetch_request", parent)
    fetcher = patches.AdaptiveWaitFetcher.__new__(patches.AdaptiveWaitFetcher)
    fetcher._records = {}
    fetcher.records_class = patches.StageRecords
    assert await fetcher._proc_fetch_request(None, 0, None) is True
    assert type(records) is patches.StageRecords
    assert fetcher._records[failed] is error


def test_a_consumer_of_raw_bytes_refuses_deserializers() -> None:
    for records in ("stage", "raw"):
        with pytest.raises(ValueError, match="no deserializers"):
            AdaptiveWaitConsumer(records=records, value_deserializer=bytes.upper)


def test_the_installed_decoder_returns_aiokafkas_response_without_its_empty_partitions() -> None:
    install_fetch_codec()
    install_fetch_codec()  # once per process: a second call changes nothing
    empty = (0, 0, 4, 4, 0, [], -1, b"")
    sent = FetchResponse_v11(
        0, 0, 0, [("a", [empty, (1, 0, 9, 9, 0, [], -1, b"records")]), ("b", [empty])]
    )
    before = patches.fetch_decodes
    got = FetchResponse_v11.decode(BytesIO(bytes(sent.encode())))
    assert patches.fetch_decodes == before + 1
    assert isinstance(got, FetchResponse_v11)
    assert got.API_VERSION == 11
    assert (got.throttle_time_ms, got.error_code, got.session_id) == (0, 0, 0)
    assert got.topics == [("a", [(1, 0, 9, 9, 0, [], -1, b"records")])]


@pytest.mark.services
async def test_a_consumer_against_the_broker_reads_every_record_through_the_rust_decoder(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap, "test.fetchdecode", 8)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, b"v%d" % i, partition=(3, 6)[i % 2])
    finally:
        await producer.stop()
    before = patches.fetch_decodes
    consumer = await _consumer(kafka_bootstrap, topic, 8)
    got: dict[int, list[bytes]] = {}
    try:
        async with asyncio.timeout(20):
            while sum(len(v) for v in got.values()) < 30:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    got.setdefault(tp.partition, []).extend(r.value for r in records)
        # The broker answers v11 and our parser read it; six of eight partitions were empty
        # in every response and never reached aiokafka's per-partition loop.
        assert patches.fetch_decodes > before
        assert consumer.highwater(TopicPartition(topic, 3)) == 15
        assert consumer.highwater(TopicPartition(topic, 0)) is None
    finally:
        await consumer.stop()
    assert got == {
        3: [b"v%d" % i for i in range(0, 30, 2)],
        6: [b"v%d" % i for i in range(1, 30, 2)],
    }


_I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
_I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(
    st.tuples(_I32, _I32, _I32, _I32, st.integers(min_value=0, max_value=1), _I32, _I32),
    st.lists(
        st.tuples(
            st.text(max_size=8), st.lists(st.tuples(_I32, _I32, _I64, _I64, _I32), max_size=5)
        ),
        max_size=4,
    ),
    st.lists(st.tuples(st.text(max_size=8), st.lists(_I32, max_size=3)), max_size=2),
    st.one_of(st.none(), st.text(max_size=8)),
)
def test_a_fetch_request_is_written_byte_for_byte_as_aiokafkas_schema_writes_it(
    head: tuple[int, ...],
    topics: list[Any],
    forgotten: list[Any],
    rack_id: str | None,
) -> None:
    install_fetch_codec()
    request = FetchRequest_v11(*head, topics, forgotten, rack_id)
    schema = FetchRequest_v11.SCHEMA
    expected = bytes(schema.encode([request.__dict__[name] for name in schema.names]))
    assert request.encode() == expected
