"""Intent ids: derived from the submission's record, and *aligned* to its partition.

Ingest gives an intent an id derived from its record (so a redelivered record gets the same
id and re-emits identical events): from (record timestamp, strategy id, client intent id),
or, without a client id, from the record's (topic, partition, offset).

Every topic after ingest is keyed by intent id.  The id is also chosen so that Kafka's
default partitioner puts it on the *same partition number* as the submission it came from:
the seed's first candidate, else the first of ``seed + ("#1",)``, ``seed + ("#2",)``, ...
whose murmur2 lands there (eight tries on average with eight partitions, ~1 us each).  The
whole path of an intent then stays on one partition number, which is what lets ingest be
fused with the chain after it (``topology.yaml`` ``fusion:``): ingest's ``intent.submitted``
is handed to validate in memory on the partition its topic copy gets, and the planner reads
its own plans' execution reports on the partition it owns.  Measured: one Kafka hop less
before ``plan.created`` (bench/RESULTS.md, Session 18).

A producer predicts the id of what it submits (``predicted_intent_id``) from the partition
its record will land on: with the key ``submission_key`` and Kafka's default partitioner,
that is computable before sending (``POST /intents`` claims the id before producing).  A
producer with another partitioner (librdkafka's default is CRC32) learns the partition from
its delivery report and passes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from pipeline.ids import deterministic_ulid
from pipeline.ops import kafka_partition
from pipeline.store.dedupe import dedupe_key

if TYPE_CHECKING:
    from pipeline.topology.models import Topology

INPUT_TOPIC = "sep.intents.submitted"
PREFIX = "intent-"


def aligned_intent_id(
    timestamp_ms: int, seed: Sequence[str], partition: int, partitions: int
) -> str:
    """The first id of ``seed`` (salted ``#n`` after the first try) that Kafka's default
    partitioner puts on ``partition % partitions``."""
    target = partition % partitions
    intent_id = PREFIX + deterministic_ulid(timestamp_ms, *seed)
    salt = 0
    while kafka_partition(intent_id.encode(), partitions) != target:
        salt += 1
        intent_id = PREFIX + deterministic_ulid(timestamp_ms, *seed, f"#{salt}")
    return intent_id


def submission_key(strategy_id: str, client_intent_id: str | None) -> str:
    """The key a submission is produced with: its dedupe key when it has a client id (so a
    strategy's submissions spread over every partition, and a resent one lands where the
    first did), else the strategy id."""
    if client_intent_id is None:
        return strategy_id
    return dedupe_key(strategy_id, client_intent_id)


def intent_partitions(topology: Topology | None = None) -> tuple[int, int]:
    """(partitions of the input topic, of ingest's output topic) in ``topology`` (None: the
    default one, ``$SEP_TOPOLOGY`` or the repository's, read once)."""
    if topology is None:
        return _default_partitions()
    counts = {t.name: t.partitions for t in topology.topics}
    return counts.get(INPUT_TOPIC, 1), counts[topology.stage("ingest").events_topic]


@cache
def _default_partitions() -> tuple[int, int]:
    from pipeline.topology import load_topology  # the topology imports models that import us

    return intent_partitions(load_topology())


def predicted_intent_id(
    timestamp_ms: int,
    strategy_id: str,
    client_intent_id: str,
    *,
    partition: int | None = None,
    topology: Topology | None = None,
) -> str:
    """The id ingest gives a submission with a client intent id.

    ``partition``: the input partition its record is on (None: where Kafka's default
    partitioner puts ``submission_key``).  ``topology``: whose partition counts (None: the
    default one)."""
    inputs, outputs = intent_partitions(topology)
    if partition is None:
        partition = kafka_partition(submission_key(strategy_id, client_intent_id).encode(), inputs)
    return aligned_intent_id(timestamp_ms, (strategy_id, client_intent_id), partition, outputs)


def record_intent_id(
    timestamp_ms: int, topic: str, partition: int, offset: int, topology: Topology | None = None
) -> str:
    """The id ingest gives the record at (``topic``, ``partition``, ``offset``) when the id
    cannot come from a client id: a submission without one, or a rejected record (then
    ``timestamp_ms`` is the record's, unless ingest found it skewed)."""
    outputs = intent_partitions(topology)[1]
    return aligned_intent_id(timestamp_ms, (topic, str(partition), str(offset)), partition, outputs)
