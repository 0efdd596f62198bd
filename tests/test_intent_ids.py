"""Intent ids aligned to their submission's partition (``pipeline.intent_ids``)."""

from __future__ import annotations

import pytest

from pipeline.ids import deterministic_ulid
from pipeline.intent_ids import (
    aligned_intent_id,
    predicted_intent_id,
    record_intent_id,
    submission_key,
)
from pipeline.ops import kafka_partition
from pipeline.stages.base import Record
from pipeline.stages.ingest import ingest_record
from pipeline.store.dedupe import dedupe_key
from pipeline.topology import load_topology

T0 = 1_700_000_000_000
TOPOLOGY = load_topology()
INGESTED = TOPOLOGY.stage("ingest").events_topic


@pytest.mark.parametrize("partitions", [1, 3, 8, 32])
def test_an_aligned_id_lands_on_its_partition_and_is_the_same_every_time(partitions: int) -> None:
    for n in range(200):
        seed = ("s", f"c-{n}")
        partition = n % partitions
        intent_id = aligned_intent_id(T0, seed, partition, partitions)
        assert kafka_partition(intent_id.encode(), partitions) == partition
        assert aligned_intent_id(T0, seed, partition, partitions) == intent_id


def test_the_seeds_own_id_is_kept_when_it_lands_there_already() -> None:
    plain = "intent-" + deterministic_ulid(T0, "s", "c")
    home = kafka_partition(plain.encode(), 8)
    assert aligned_intent_id(T0, ("s", "c"), home, 8) == plain
    elsewhere = aligned_intent_id(T0, ("s", "c"), (home + 1) % 8, 8)
    assert elsewhere != plain
    assert elsewhere[:17] == plain[:17]  # the same time part: ids still sort by submit time


def test_a_partition_beyond_the_count_wraps_round() -> None:
    assert aligned_intent_id(T0, ("s", "c"), 13, 8) == aligned_intent_id(T0, ("s", "c"), 5, 8)


def test_a_submission_is_keyed_by_its_dedupe_key_or_else_its_strategy() -> None:
    assert submission_key("dca", "c-1") == dedupe_key("dca", "c-1")
    assert submission_key("dca", None) == "dca"


def test_the_prediction_without_a_partition_is_where_the_default_partitioner_puts_it() -> None:
    key = submission_key("dca", "c-1").encode()
    landed = kafka_partition(key, TOPOLOGY.topic("sep.intents.submitted").partitions)
    assert predicted_intent_id(T0, "dca", "c-1") == predicted_intent_id(
        T0, "dca", "c-1", partition=landed
    )


def test_a_rejected_records_id_is_predictable_from_where_it_landed() -> None:
    record = Record("sep.intents.submitted", 6, 41, T0, b"k", b"not json")
    outcome = ingest_record(
        record, {}, T0 + 5, topic=INGESTED, partitions=TOPOLOGY.topic(INGESTED).partitions
    )
    assert outcome.rejected is not None
    assert outcome.intent_id == record_intent_id(T0, "sep.intents.submitted", 6, 41)
