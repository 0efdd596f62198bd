"""Bytes on the wire <-> events.  JSON, camelCase, Decimals as strings.

pydantic-core does the JSON work in Rust; this module is the one place that knows the
encoding, so a faster format later changes nothing else.
"""

from __future__ import annotations

import re
from datetime import datetime

import orjson

from pipeline.models.events import Event, made_wire

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
    data = _made_json(event) if made_wire(event) else None
    if data is None:
        # The serializer's bytes as they are: ``model_dump_json`` would decode them to a str
        # that ``.encode()`` then copies back (two passes over every event for nothing).
        data = Event.__pydantic_serializer__.to_json(event, by_alias=True, exclude_none=True)
    if b"\\u0000" in data:
        data = _NUL_ESCAPE.sub(rb"\1\\ufffd", data)
    return data


def _made_json(event: Event) -> bytes | None:
    """The JSON of an event ``make_event`` made, by orjson: the same bytes as pydantic's
    (``tests/test_codec.py``) in half the time, as its payload is a typed model's wire form
    (strings, integers, finite floats, lists and objects: ``models.events.made_wire``) and the
    envelope's fields are written here in their order, ``causationId`` left out when None.
    None if orjson cannot (then pydantic does)."""
    envelope: dict[str, object] = {
        "eventId": event.event_id,
        "timestamp": _stamp(event.timestamp),
        "topic": event.topic,
        "correlationId": event.correlation_id,
    }
    if event.causation_id is not None:
        envelope["causationId"] = event.causation_id
    envelope["seq"] = event.seq
    envelope["version"] = event.version
    envelope["payload"] = event.payload
    try:
        return orjson.dumps(envelope, option=orjson.OPT_UTC_Z)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, say
        return None


_LAST_STAMP: tuple[datetime | None, str] = (None, "")


def _stamp(timestamp: datetime) -> str:
    """The timestamp as orjson writes it; the last one kept (a stage stamps a batch's events
    with one datetime object, ``models.events.make_event``)."""
    global _LAST_STAMP
    last, text = _LAST_STAMP
    if timestamp is not last:
        text = orjson.dumps(timestamp, option=orjson.OPT_UTC_Z)[1:-1].decode()
        _LAST_STAMP = (timestamp, text)
    return text


def decode_event(raw: bytes) -> Event:
    return Event.model_validate_json(raw)


def encode_key(key: str) -> bytes:
    return key.encode()
