"""ULIDs: format, time ordering, and the determinism that makes redelivery harmless."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ids import (
    _encode,
    deterministic_ulid,
    encode_parts,
    is_ulid,
    new_intent_id,
    new_ulid,
    ulid_timestamp_ms,
)

# Crockford base32: digits and upper-case letters without I, L, O, U.  The first character
# carries only 3 bits (26 chars * 5 bits = 130 bits for 128), so it is 0..7.
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def test_new_ulid_is_26_crockford_characters() -> None:
    for _ in range(50):
        ulid = new_ulid()
        assert ULID_RE.match(ulid), ulid
        assert is_ulid(ulid)


def test_new_ulid_encodes_the_given_timestamp() -> None:
    ms = 1_700_000_000_123
    assert ulid_timestamp_ms(new_ulid(ms)) == ms


def test_new_ulid_defaults_to_the_wall_clock() -> None:
    before = int(time.time() * 1000)
    stamp = ulid_timestamp_ms(new_ulid())
    after = int(time.time() * 1000)
    assert before <= stamp <= after


def test_timestamp_zero_and_max_round_trip() -> None:
    assert ulid_timestamp_ms(new_ulid(0)) == 0
    assert new_ulid(0).startswith("0000000000")  # 10 chars of timestamp, all zero
    top = (1 << 48) - 1
    assert ulid_timestamp_ms(new_ulid(top)) == top
    assert new_ulid(top).startswith("7ZZZZZZZZZ")


def test_ulids_sort_by_creation_time() -> None:
    stamps = [0, 1, 31, 32, 1_000, 1_699_999_999_999, 1_700_000_000_000, (1 << 48) - 1]
    ids = [new_ulid(ms) for ms in stamps]
    assert sorted(ids) == ids
    # ...whatever the random part: the timestamp is the most significant part.
    low = deterministic_ulid(1_000, "zzzz")
    high = deterministic_ulid(1_001, "aaaa")
    assert low < high


def test_new_ulid_randomness_differs_within_one_millisecond() -> None:
    ids = {new_ulid(42) for _ in range(200)}
    assert len(ids) == 200
    assert {ulid_timestamp_ms(u) for u in ids} == {42}


def test_deterministic_ulid_is_a_function_of_its_inputs() -> None:
    a = deterministic_ulid(1_000, "intent-x", "1", "intent.submitted")
    assert a == deterministic_ulid(1_000, "intent-x", "1", "intent.submitted")
    assert is_ulid(a)
    assert ulid_timestamp_ms(a) == 1_000


@pytest.mark.parametrize(
    ("ms", "seed"),
    [
        (1_001, ("intent-x", "1", "intent.submitted")),  # other time
        (1_000, ("intent-y", "1", "intent.submitted")),  # other correlation
        (1_000, ("intent-x", "2", "intent.submitted")),  # other seq
        (1_000, ("intent-x", "1", "intent.rejected")),  # other topic
        (1_000, ("intent-x", "1")),  # fewer parts
    ],
)
def test_deterministic_ulid_differs_when_any_input_differs(ms: int, seed: tuple[str, ...]) -> None:
    base = deterministic_ulid(1_000, "intent-x", "1", "intent.submitted")
    assert deterministic_ulid(ms, *seed) != base


def test_the_seed_is_hashed_as_length_prefixed_utf8_parts() -> None:
    # The ids of events already stored depend on these exact bytes (a cached part too).
    parts = ("intent-x", "1", "intent.submitted", "é\ud800")
    expected = b"".join(
        len(data).to_bytes(8, "big") + data
        for data in (p.encode("utf-8", "surrogatepass") for p in parts)
    )
    for _ in range(2):  # made, then found
        assert encode_parts(*parts) == expected
        r = int.from_bytes(hashlib.blake2b(expected, digest_size=10).digest(), "big")
        assert deterministic_ulid(7, *parts) == _encode((7 << 80) | r)


def test_deterministic_ulid_seed_parts_are_not_simply_concatenated() -> None:
    assert deterministic_ulid(5, "ab", "c") != deterministic_ulid(5, "a", "bc")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a\x1fb", "c"), ("a", "b\x1fc")),  # a separator inside a part
        (("a", ""), ("a",)),  # an empty part is a part
        (("",), ()),
        (("\x00" * 8 + "a",), ("", "a")),  # a part that looks like a length prefix
    ],
)
def test_deterministic_ulid_seeds_split_differently_never_collide(
    a: tuple[str, ...], b: tuple[str, ...]
) -> None:
    assert deterministic_ulid(5, *a) != deterministic_ulid(5, *b)


def test_timestamp_beyond_48_bits_is_masked_not_overflowing() -> None:
    ulid = new_ulid(1 << 48)
    assert is_ulid(ulid)
    assert ulid_timestamp_ms(ulid) == 0


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", True),  # the spec's example
        ("01arz3ndektsv4rrffq69g5fav", True),  # case-insensitive
        ("01ARZ3NDEKTSV4RRFFQ69G5FA", False),  # 25 chars
        ("01ARZ3NDEKTSV4RRFFQ69G5FAVX", False),  # 27 chars
        ("81ARZ3NDEKTSV4RRFFQ69G5FAV", False),  # first char > 7 overflows 128 bits
        ("01ARZ3NDEKTSV4RRFFQ69G5FAU", False),  # U is not Crockford
        ("01ARZ3NDEKTSV4RRFFQ69G5FA-", False),
        ("", False),
    ],
)
def test_is_ulid(text: str, valid: bool) -> None:
    assert is_ulid(text) is valid


def test_spec_example_timestamp() -> None:
    # ulid/javascript's README: decodeTime("01ARYZ6S41TSV4RRFFQ69G5FAV") == 1469918176385.
    assert ulid_timestamp_ms("01ARYZ6S41TSV4RRFFQ69G5FAV") == 1_469_918_176_385
    assert new_ulid(1_469_918_176_385).startswith("01ARYZ6S41")


def test_new_intent_id() -> None:
    intent_id = new_intent_id(7)
    prefix, _, ulid = intent_id.partition("-")
    assert prefix == "intent"
    assert is_ulid(ulid)
    assert ulid_timestamp_ms(ulid) == 7


def _digits_one_by_one(value: int) -> str:
    """The definition: 26 base-32 digits, least significant computed first."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_encode_equals_the_digit_by_digit_definition(value: int) -> None:
    assert _encode(value) == _digits_one_by_one(value)


def test_encode_extremes() -> None:
    assert _encode(0) == "0" * 26
    assert _encode((1 << 128) - 1) == "7" + "Z" * 25


@pytest.mark.parametrize("text", ["\u212a" * 26, "0" + "\u017f" * 25, "8" + "0" * 25, "0" * 25])
def test_is_ulid_refuses_what_is_not_26_crockford_digits(text: str) -> None:
    assert not is_ulid(text)


def test_the_timestamp_is_read_from_the_first_ten_digits() -> None:
    for ms in (0, 1, 1_765_000_000_123, 2**48 - 1):
        assert ulid_timestamp_ms(new_ulid(ms)) == ms
