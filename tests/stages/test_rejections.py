"""Rejections and dead letters stay bounded whatever the input (limits in pipeline.limits)."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from pipeline.limits import (
    DEAD_LETTER_PREFIX_BYTES,
    MAX_FIELD_ERROR_CHARS,
    MAX_FIELD_ERRORS,
    MAX_PRODUCED_RECORD_BYTES,
    MAX_REASON_CHARS,
)
from pipeline.models.events import FieldError
from pipeline.stages.base import Output
from pipeline.stages.rejections import (
    DEADLETTER_TOPIC,
    bound_errors,
    clip,
    dead_letter,
    field_errors,
    summarise,
)


def record_bytes(output: Output) -> int:
    """What the output weighs in a produce request: key, value and headers."""
    return len(output.key) + len(output.value) + sum(len(k) + len(v) for k, v in output.headers)


def letter(
    raw: bytes, errors: list[FieldError] | None = None, reason: str = "bad", omitted: int = 0
) -> tuple[Output, dict[str, bytes]]:
    out = dead_letter(
        "dl-1",
        raw,
        reason=reason,
        errors=errors or [],
        source="t/0/7",
        correlation_id="intent-x",
        errors_omitted=omitted,
    )
    return out, dict(out.headers)


def test_a_small_record_is_kept_whole_with_its_size_and_digest() -> None:
    out, headers = letter(b'{"a": 1}', [FieldError(path="a", message="no")])
    assert (out.topic, out.key, out.value) == (DEADLETTER_TOPIC, b"dl-1", b'{"a": 1}')
    assert headers["sep-truncated"] == b"false"
    assert headers["sep-original-bytes"] == b"8"
    assert headers["sep-sha256"] == hashlib.sha256(b'{"a": 1}').hexdigest().encode()
    assert orjson.loads(headers["sep-errors"]) == [{"path": "a", "message": "no"}]
    assert headers["sep-errors-omitted"] == b"0"
    assert (headers["sep-source"], headers["sep-correlation-id"]) == (b"t/0/7", b"intent-x")


@pytest.mark.parametrize(
    "size", [DEAD_LETTER_PREFIX_BYTES, DEAD_LETTER_PREFIX_BYTES + 1, 1_000_000, 2 * 1024 * 1024]
)
def test_a_large_record_keeps_a_prefix_and_says_so(size: int) -> None:
    raw = (bytes(range(256)) * (size // 256 + 1))[:size]
    out, headers = letter(raw)
    truncated = size > DEAD_LETTER_PREFIX_BYTES
    assert out.value == raw[:DEAD_LETTER_PREFIX_BYTES]
    assert headers["sep-truncated"] == (b"true" if truncated else b"false")
    assert headers["sep-original-bytes"] == str(size).encode()
    # The digest is of the whole original, so the copy can be matched to its source.
    assert headers["sep-sha256"] == hashlib.sha256(raw).hexdigest().encode()
    assert record_bytes(out) < MAX_PRODUCED_RECORD_BYTES


def test_errors_are_bounded_in_number_and_length_and_counted() -> None:
    long = "m" * 5_000
    errors = [FieldError(path=f"p{i}." + long, message=long) for i in range(25)]
    errors += [errors[-1]] * (30_000 - 25)
    out, headers = letter(b"{}", errors, omitted=7)
    listed = orjson.loads(headers["sep-errors"])
    assert len(listed) == MAX_FIELD_ERRORS
    assert [e["path"][:3] for e in listed[:2]] == ["p0.", "p1."]
    assert all(len(e["path"]) == len(e["message"]) == MAX_FIELD_ERROR_CHARS for e in listed)
    assert all(e["message"].endswith("…") for e in listed)
    assert headers["sep-errors-omitted"] == str(30_000 - MAX_FIELD_ERRORS + 7).encode()
    assert record_bytes(out) < 64 * 1024


def test_a_long_reason_is_cut() -> None:
    # The runtime dead-letters with reason=f"{stage} failed: {exc!r}": any length.
    _, headers = letter(b"{}", reason="ingest failed: " + "e" * 1_000_000)
    assert len(headers["sep-reason"].decode()) == MAX_REASON_CHARS


def test_the_worst_case_dead_letter_fits_what_we_may_produce() -> None:
    # Control characters are escaped six bytes each in JSON; 4-byte characters in headers.
    nasty = "\x01" * 10_000
    errors = [FieldError(path=nasty, message=nasty)] * 1_000
    out, _ = letter(b"\xff" * 3_000_000, errors, reason="\U0001f4a5" * 1_000_000)
    assert record_bytes(out) < MAX_PRODUCED_RECORD_BYTES


class Strings(BaseModel):
    items: list[str]


def test_field_errors_keep_the_first_ones_and_count_the_rest() -> None:
    with pytest.raises(ValidationError) as info:
        Strings.model_validate({"items": [0] * 30_000})
    errors, omitted = field_errors(info.value)
    assert [e.path for e in errors] == [f"items.{i}" for i in range(MAX_FIELD_ERRORS)]
    assert omitted == 30_000 - MAX_FIELD_ERRORS


def test_bound_errors_adds_what_it_leaves_out_to_what_was_already_left_out() -> None:
    errors = [FieldError(path=str(i), message="m") for i in range(MAX_FIELD_ERRORS + 5)]
    kept, omitted = bound_errors(errors, 3)
    assert len(kept) == MAX_FIELD_ERRORS
    assert omitted == 8
    assert bound_errors(errors[:2]) == (tuple(errors[:2]), 0)


def test_summary_names_three_and_counts_the_rest() -> None:
    errors = [FieldError(path=f"f{i}", message="bad") for i in range(5)]
    assert summarise(errors) == "f0: bad; f1: bad; f2: bad (+2 more)"
    assert summarise(errors, 100) == "f0: bad; f1: bad; f2: bad (+102 more)"
    assert summarise(errors[:1], prefix="invalid intent: ") == "invalid intent: f0: bad"
    assert summarise([FieldError(path="", message="x")]) == "<root>: x"


def test_a_long_summary_is_cut_but_keeps_its_count() -> None:
    errors = [FieldError(path="p" * 5_000, message="m" * 5_000)] * 4
    text = summarise(errors, 29_996, prefix="invalid intent: ")
    assert len(text) <= MAX_REASON_CHARS
    assert text.startswith("invalid intent: ppp")
    assert text.endswith("… (+29997 more)")  # 30,000 errors, 3 named


def test_clip() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"
