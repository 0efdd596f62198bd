"""``kafka_partition``: the Rust partitioner equals the producers' (aiokafka's murmur2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.ops import kafka_partition
from pipeline.ops.twin.partition import kafka_partition as twin


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=1024))
def test_rust_equals_the_twin(key: bytes, partitions: int) -> None:
    assert kafka_partition(key, partitions) == twin(key, partitions)


def test_intent_ids_spread_like_the_producer_spreads_them() -> None:
    keys = [f"intent-01J{i:023d}".encode() for i in range(2000)]
    assert [kafka_partition(k, 8) for k in keys] == [twin(k, 8) for k in keys]
    assert len({kafka_partition(k, 8) for k in keys}) == 8
