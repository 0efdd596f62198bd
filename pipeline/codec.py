"""Bytes on the wire <-> events.  JSON, camelCase, Decimals as strings.

pydantic-core does the JSON work in Rust; this module is the one place that knows the
encoding, so a faster format later changes nothing else.
"""

from __future__ import annotations

from pipeline.models.events import Event


def encode_event(event: Event) -> bytes:
    return event.model_dump_json(by_alias=True, exclude_none=True).encode()


def decode_event(raw: bytes) -> Event:
    return Event.model_validate_json(raw)


def encode_key(key: str) -> bytes:
    return key.encode()
