"""Turning bad input into a rejection a person can act on, plus its dead-letter record.

Both are bounded whatever the input (limits in ``pipeline.limits``): a hostile record must
never make us produce something the producer refuses, or its partition wedges (a 60 KB
record with 30,000 field errors once made a 2.57 MB rejection, and a 1,000,000-byte
record's dead-letter copy was over the producer's request limit).

    errors      first MAX_FIELD_ERRORS, each path and message cut to MAX_FIELD_ERROR_CHARS,
                plus a count of the ones left out
    reason      cut to MAX_REASON_CHARS
    dead letter the raw bytes up to DEAD_LETTER_PREFIX_BYTES, with the original size and
                SHA-256 in headers (so a truncated copy can still be matched to its source)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.limits import (
    DEAD_LETTER_PREFIX_BYTES,
    MAX_FIELD_ERROR_CHARS,
    MAX_FIELD_ERRORS,
    MAX_REASON_CHARS,
)
from pipeline.models.events import FieldError
from pipeline.stages.base import Output

DEADLETTER_TOPIC = "sep.deadletter"
_ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def bounded(error: FieldError) -> FieldError:
    if len(error.path) <= MAX_FIELD_ERROR_CHARS and len(error.message) <= MAX_FIELD_ERROR_CHARS:
        return error
    return FieldError(
        path=clip(error.path, MAX_FIELD_ERROR_CHARS),
        message=clip(error.message, MAX_FIELD_ERROR_CHARS),
    )


def bound_errors(
    errors: Sequence[FieldError], omitted: int = 0
) -> tuple[tuple[FieldError, ...], int]:
    """At most ``MAX_FIELD_ERRORS`` errors, each cut, and how many are left out in all."""
    kept = tuple(bounded(e) for e in errors[:MAX_FIELD_ERRORS])
    return kept, omitted + len(errors) - len(kept)


def field_errors(exc: ValidationError) -> tuple[tuple[FieldError, ...], int]:
    """pydantic's errors as (dotted path into the *input*, message), e.g. ``assets.0.amount``:
    the first ``MAX_FIELD_ERRORS`` of them, and how many more there were."""
    out: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        if len(out) == MAX_FIELD_ERRORS:
            break
        path = ".".join(str(part) for part in error["loc"])
        out.append(bounded(FieldError(path=path, message=error["msg"])))
    return tuple(out), exc.error_count() - len(out)


def summarise(errors: Sequence[FieldError], omitted: int = 0, *, prefix: str = "") -> str:
    """``prefix`` then the first three errors on one line, and how many more (listed or left
    out) there are; at most ``MAX_REASON_CHARS`` long, the count always kept."""
    head = "; ".join(f"{e.path or '<root>'}: {e.message}" for e in map(bounded, errors[:3]))
    more = len(errors) - min(len(errors), 3) + omitted
    tail = f" (+{more} more)" if more else ""
    return clip(prefix + head, MAX_REASON_CHARS - len(tail)) + tail


def dead_letter(
    key: str,
    raw: bytes,
    *,
    reason: str,
    errors: Sequence[FieldError],
    source: str,
    correlation_id: str,
    errors_omitted: int = 0,
) -> Output:
    """The raw bytes (a bounded prefix of them), with why and where from in the headers.

    Headers: ``sep-reason``, ``sep-errors`` (JSON list of {path, message}),
    ``sep-errors-omitted``, ``sep-source``, ``sep-correlation-id``, ``sep-original-bytes``,
    ``sep-sha256`` (hex, of the whole original) and ``sep-truncated`` (``true`` when the
    value holds only the first ``DEAD_LETTER_PREFIX_BYTES`` bytes).
    """
    kept, omitted = bound_errors(errors, errors_omitted)
    detail: list[dict[str, Any]] = [{"path": e.path, "message": e.message} for e in kept]
    truncated = len(raw) > DEAD_LETTER_PREFIX_BYTES
    headers = (
        ("sep-reason", clip(reason, MAX_REASON_CHARS).encode()),
        ("sep-errors", orjson.dumps(detail)),
        ("sep-errors-omitted", str(omitted).encode()),
        ("sep-source", source.encode()),
        ("sep-correlation-id", correlation_id.encode()),
        ("sep-original-bytes", str(len(raw)).encode()),
        ("sep-sha256", hashlib.sha256(raw).hexdigest().encode()),
        ("sep-truncated", b"true" if truncated else b"false"),
    )
    value = raw[:DEAD_LETTER_PREFIX_BYTES] if truncated else raw
    return Output(DEADLETTER_TOPIC, key.encode(), value, headers)
