"""Bytes on the wire <-> events.  JSON, camelCase, Decimals as strings.

pydantic-core does the JSON work in Rust; this module is the one place that knows the
encoding, so a faster format later changes nothing else.
"""

from __future__ import annotations

import re

from pipeline.models.events import Event

# A JSON escape of U+0000 (not preceded by an escaped backslash, which would make it text).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def encode_event(event: Event) -> bytes:
    """The event as JSON, with any U+0000 replaced by U+FFFD.

    PostgreSQL cannot store U+0000 in ``jsonb`` (or ``text``), so one event carrying it
    (hostile input quoted in a rejection's reason or field path) would stop the event store
    for good.  Replacing it here, where every event is encoded, keeps Kafka, the store and the
    read models identical.  Valid intents cannot carry it: identifiers refuse control
    characters, and other free text only reaches events inside rejections.
    """
    # The serializer's bytes as they are: ``model_dump_json`` would decode them to a str that
    # ``.encode()`` then copies back (two passes over every event for nothing).
    data = Event.__pydantic_serializer__.to_json(event, by_alias=True, exclude_none=True)
    if b"\\u0000" in data:
        data = _NUL_ESCAPE.sub(rb"\1\\ufffd", data)
    return data


def decode_event(raw: bytes) -> Event:
    return Event.model_validate_json(raw)


def encode_key(key: str) -> bytes:
    return key.encode()
