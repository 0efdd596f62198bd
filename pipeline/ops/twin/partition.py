"""Twin of ``rust_ops/src/partition.rs``: Kafka's default partitioner in Python.

aiokafka's own ``murmur2`` is the reference the Rust operator must equal (it is what a
producer that is not ours computes); this module only applies the partition rule to it.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def kafka_partition(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % max(partitions, 1)
