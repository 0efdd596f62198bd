"""Decisions recovered from the stages' own events: the grouping rule (pure), which tables a
``TableSet`` sources, and recovery from a real broker's events topic within the TTL."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.runtime.delivery.sourced import FINAL_EVENTS, SourcedTable, event_type
from pipeline.runtime.delivery.tables import ChangelogTable, TableSet
from pipeline.stages.base import Record
from pipeline.stages.decisions import decode_outputs
from pipeline.stages.table_names import (
    EXECUTE_OPENINGS,
    PLAN_DECISIONS,
    VALIDATE_DECISIONS,
)

VALIDATED = "sep.intents.validated"


def _event(event_type: str, intent: str, n: int = 0) -> bytes:
    # The envelope's field order, as encode_event writes it: the type before the payload.
    return (
        b'{"eventId":"01J%023d","timestamp":"2026-12-06T12:00:00Z","topic":"%s",'
        b'"correlationId":"%s","seq":1,"payload":{"topic":"decoy"}}'
        % (n, event_type.encode(), intent.encode())
    )


def _table() -> SourcedTable:
    return SourcedTable(VALIDATE_DECISIONS, VALIDATED, "test", FINAL_EVENTS[VALIDATE_DECISIONS])


def test_the_event_type_is_the_envelopes_not_the_payloads() -> None:
    assert event_type(_event("risk.approved", "i-1")) == "risk.approved"
    assert event_type(b'{"eventId":"x"}') is None
    assert event_type(None) is None


def test_an_answer_is_its_records_up_to_the_first_final_event_without_copies() -> None:
    table = _table()
    approved, accepted = _event("risk.approved", "i-1", 1), _event("intent.accepted", "i-1", 2)
    headers = (("sep-trace", b"t1"),)
    table.gather(3, b"i-1", approved, headers)
    table.gather(3, b"i-1", approved, headers)  # re-emitted on a redelivery
    table.gather(3, b"i-1", accepted, ())
    table.gather(3, b"i-1", _event("risk.rejected", "i-1", 3), ())  # cannot follow: ignored
    assert table.get("i-1") is None  # nothing is an answer before the partition is finished
    assert table.finish(3) == 1
    value = table.get("i-1")
    assert value is not None
    partition, outputs = decode_outputs(value)
    assert partition == 3
    assert [(o.topic, o.key, o.value, o.headers) for o in outputs] == [
        (VALIDATED, b"i-1", approved, headers),
        (VALIDATED, b"i-1", accepted, ()),
    ]
    assert table.take_recovered() == ["i-1"]
    assert table.take_recovered() == []


def test_an_answer_without_its_final_event_is_not_remembered() -> None:
    table = _table()
    table.gather(0, b"i-2", _event("risk.approved", "i-2"), ())
    table.gather(0, b"i-3", _event("risk.rejected", "i-3"), ())
    assert table.finish(0) == 1
    assert table.get("i-2") is None
    assert table.get("i-3") is not None
    assert table.incomplete == 1


def test_an_answer_held_in_this_process_is_not_replaced_and_partitions_are_forgotten() -> None:
    table = _table()
    record = Record(VALIDATED, 5, 0, 0, b"i-4", b"")
    table.set("i-4", "held", record)
    table.gather(5, b"i-4", _event("risk.rejected", "i-4"), ())
    assert table.finish(5) == 0
    assert table.get("i-4") == "held"
    assert table.take_pending() == []  # nothing is ever written
    assert table.forget([4]) == 0
    assert table.forget([5]) == 1
    assert table.get("i-4") is None


def test_a_table_set_sources_only_decisions_whose_events_topic_is_partitioned_like_the_input() -> (
    None
):
    partitions = {VALIDATED: 8, "sep.plans": 4}
    events = TableSet("g", decisions_from="events", topic_partitions=partitions)
    assert isinstance(events.make(VALIDATE_DECISIONS, "", "in", 8, VALIDATED), SourcedTable)
    # plan's events topic has another partition count: its answers would be elsewhere
    assert isinstance(events.make(PLAN_DECISIONS, "", "in", 8, "sep.plans"), ChangelogTable)
    # execute's openings cannot be rebuilt from its events
    assert isinstance(events.make(EXECUTE_OPENINGS, "", "in", 8, VALIDATED), ChangelogTable)
    changelog = TableSet("g", decisions_from="changelog", topic_partitions=partitions)
    assert isinstance(changelog.make(VALIDATE_DECISIONS, "", "in", 8, VALIDATED), ChangelogTable)
    with pytest.raises(ValueError, match="decisions_from"):
        TableSet("g", decisions_from="redis")


@pytest.mark.services
async def test_recovery_reads_the_events_topic_of_the_assigned_partitions_within_the_ttl(
    kafka_bootstrap: str,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    source, events_topic = f"test.in.{suffix}", f"test.validated.{suffix}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(source, 2, 1), NewTopic(events_topic, 2, 1)])
    finally:
        await admin.close()
    now_ms = int(time.time() * 1000)
    old_ms = now_ms - 600_000  # older than the 300 s TTL: its redeliveries are long past
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        sends = [
            (0, b"old", _event("risk.rejected", "old"), old_ms),
            (0, b"a", _event("risk.approved", "a"), now_ms - 1_000),
            (0, b"a", _event("intent.accepted", "a"), now_ms - 1_000),
            (0, b"cut", _event("risk.approved", "cut"), now_ms - 500),
            (1, b"other", _event("risk.rejected", "other"), now_ms - 500),
        ]
        for partition, key, value, at in sends:
            await producer.send_and_wait(
                events_topic, value, key=key, partition=partition, timestamp_ms=at
            )
    finally:
        await producer.stop()

    tables = TableSet("g", decisions_from="events", topic_partitions={events_topic: 2}, ttl_s=300)
    table = tables.make(VALIDATE_DECISIONS, "", source, 2, events_topic)
    assert isinstance(table, SourcedTable)
    read = await tables.recover(kafka_bootstrap, [(source, 0)], now_ms=now_ms)
    assert read == 3  # partition 0's records younger than the TTL; partition 1 not assigned
    value = table.get("a")
    assert value is not None
    assert [o.value for o in decode_outputs(value)[1]] == [
        _event("risk.approved", "a"),
        _event("intent.accepted", "a"),
    ]
    assert table.get("old") is None
    assert table.get("other") is None
    assert table.get("cut") is None
    assert table.incomplete == 1
    assert table.take_recovered() == ["a"]
