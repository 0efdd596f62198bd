"""``decode_fetch_v11``: the Rust parser of a Kafka ``FetchResponse`` v11 equals aiokafka's own
parse (its twin), with or without the empty partitions, and refuses what is not a response."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.protocol.fetch import FetchResponse_v11
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ops import decode_fetch_v11
from pipeline.ops.twin.fetch import decode_fetch_v11 as twin

I16 = st.integers(min_value=-(2**15), max_value=2**15 - 1)
I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

partitions = st.tuples(
    I32,
    st.one_of(st.just(0), I16),  # mostly no error
    I64,
    I64,
    I64,
    st.one_of(st.none(), st.lists(st.tuples(I64, I64), max_size=3)),
    I32,
    st.one_of(st.none(), st.just(b""), st.binary(max_size=64)),
)
responses = st.tuples(
    I32,
    I16,
    I32,
    st.lists(
        st.tuples(st.text(max_size=12), st.lists(partitions, max_size=6)),
        max_size=5,
    ),
)


def _encoded(response: tuple[Any, ...]) -> bytes:
    return bytes(FetchResponse_v11(*response).encode())


@given(responses, st.booleans())
def test_rust_equals_the_twin(response: tuple[Any, ...], keep_empty: bool) -> None:
    data = _encoded(response)
    assert decode_fetch_v11(data, keep_empty) == twin(data, keep_empty)


@given(responses)
def test_keeping_every_partition_is_aiokafkas_own_parse(response: tuple[Any, ...]) -> None:
    data = _encoded(response)
    throttle, error, session, topics = decode_fetch_v11(data, keep_empty=True)
    assert (throttle, error, session) == response[:3]
    assert topics == [(name, [tuple(p) for p in parts]) for name, parts in response[3]]


def test_only_partitions_with_records_errors_or_aborted_transactions_are_kept() -> None:
    empty = (0, 0, 7, 7, 0, [], -1, b"")
    response = (
        0,
        0,
        0,
        [
            ("quiet", [empty, (1, 0, 7, 7, 0, None, -1, None)]),
            (
                "busy",
                [empty, (1, 0, 9, 9, 0, [], -1, b"batch"), (2, 3, -1, -1, -1, None, -1, None)],
            ),
            ("aborted", [(0, 0, 9, 9, 0, [(5, 8)], -1, b"")]),
        ],
    )
    _, _, _, topics = decode_fetch_v11(_encoded(response))
    assert topics == [
        ("busy", [(1, 0, 9, 9, 0, [], -1, b"batch"), (2, 3, -1, -1, -1, None, -1, None)]),
        ("aborted", [(0, 0, 9, 9, 0, [(5, 8)], -1, b"")]),
    ]


@pytest.mark.parametrize("decode", [decode_fetch_v11, twin], ids=["rust", "python"])
def test_truncated_or_overlong_bodies_are_refused(decode: Any) -> None:
    data = _encoded((0, 0, 0, [("t", [(0, 0, 9, 9, 0, [(1, 2)], -1, b"records")])]))
    for cut in range(len(data)):
        with pytest.raises(ValueError, match="fetch response"):
            decode(data[:cut], True)
    with pytest.raises(ValueError, match="after its end"):
        decode(data + b"\0", True)
