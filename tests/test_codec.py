"""The one place that knows the encoding: events to bytes and back."""

from __future__ import annotations

from decimal import Decimal

import orjson

from pipeline.codec import decode_event, encode_event
from pipeline.models.events import IntentRejected, RiskApproved, make_event

AT = 1_767_225_600_000


def test_an_event_round_trips_byte_for_byte() -> None:
    event = make_event(
        "risk.approved",
        RiskApproved(checks=("max_notional",), notional=Decimal("10.50")),
        correlation_id="intent-01KDVDNA0001KFJWPM9YWARY2H",
        seq=2,
        causation_id="01KDVDNA00RTM8EJVSC655HCJX",
        at_ms=AT + 123,
        id_ms=AT,
    )
    raw = encode_event(event)
    assert isinstance(raw, bytes)
    assert raw.startswith(b'{"eventId":"')
    assert b'"timestamp":"2026-01-01T00:00:00.123000Z"' in raw
    assert orjson.loads(raw)["payload"] == {"checks": ["max_notional"], "notional": "10.50"}
    assert decode_event(raw) == event
    assert encode_event(decode_event(raw)) == raw


def test_a_nul_character_is_replaced_but_its_escaped_text_is_not() -> None:
    event = make_event(
        "intent.rejected",
        IntentRejected(reason="bad \x00 id, literally \\u0000"),
        correlation_id="intent-01KDVDNA0001KFJWPM9YWARY2H",
        seq=2,
        causation_id=None,
        at_ms=AT,
        id_ms=AT,
    )
    raw = encode_event(event)
    assert b"\\u0000" not in raw.replace(b"\\\\u0000", b"")
    assert orjson.loads(raw)["payload"]["reason"] == "bad \ufffd id, literally \\u0000"
