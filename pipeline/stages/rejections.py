"""Turning bad input into a rejection a person can act on, plus its dead-letter record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.models.events import FieldError
from pipeline.stages.base import Output

DEADLETTER_TOPIC = "sep.deadletter"


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """pydantic errors as (dotted path into the *input*, message), e.g. ``assets.0.amount``."""
    out = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        out.append(FieldError(path=path, message=error["msg"]))
    return tuple(out)


def summarise(errors: Sequence[FieldError]) -> str:
    head = "; ".join(f"{e.path or '<root>'}: {e.message}" for e in errors[:3])
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return head + more


def dead_letter(
    key: str,
    raw: bytes,
    *,
    reason: str,
    errors: Sequence[FieldError],
    source: str,
    correlation_id: str,
) -> Output:
    """The raw bytes, untouched, with why and where from in the headers."""
    detail: list[dict[str, Any]] = [{"path": e.path, "message": e.message} for e in errors]
    headers = (
        ("sep-reason", reason.encode()),
        ("sep-errors", orjson.dumps(detail)),
        ("sep-source", source.encode()),
        ("sep-correlation-id", correlation_id.encode()),
    )
    return Output(DEADLETTER_TOPIC, key.encode(), raw, headers)
