"""Twin of ``rust_ops/src/fetch.rs``: a ``FetchResponse`` v11 body parsed by aiokafka itself,
then the partitions a consumer has nothing to do with left out."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from aiokafka.protocol.fetch import FetchResponse_v11


def _matters(partition: tuple[Any, ...]) -> bool:
    error_code, aborted, records = partition[1], partition[5], partition[7]
    return bool(error_code or records or aborted)


def decode_fetch_v11(
    data: bytes, keep_empty: bool = False
) -> tuple[int, int, int, list[tuple[str, list[tuple[Any, ...]]]]]:
    buffer = BytesIO(data)
    try:
        throttle, error_code, session_id, topics = FetchResponse_v11.SCHEMA.decode(buffer)
    except Exception as exc:  # aiokafka raises struct errors; the operator, ValueError
        raise ValueError(f"not a fetch response: {exc!r}") from exc
    if buffer.tell() != len(data):
        raise ValueError("fetch response has bytes after its end")
    kept = []
    for name, partitions in topics:
        parts = [tuple(p) for p in partitions if keep_empty or _matters(p)]
        if keep_empty or parts:
            kept.append((name, parts))
    return throttle, error_code, session_id, kept
