"""The one place that knows the encoding: events to bytes and back."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from pipeline.codec import decode_event, encode_event
from pipeline.models.base import WireModel
from pipeline.models.events import (
    Event,
    ExecStepFilled,
    FieldError,
    IntentRejected,
    IntentSubmitted,
    RiskApproved,
    made_wire,
    make_event,
)
from pipeline.models.intent import Intent
from pipeline.samples import submission
from pipeline.topology import load_topology

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


def _pydantic_json(event: Event) -> bytes:
    """What ``encode_event`` wrote before events made here were encoded by orjson."""
    data = Event.__pydantic_serializer__.to_json(event, by_alias=True, exclude_none=True)
    return data.replace(b"\\u0000", b"\\ufffd")  # no escaped backslash precedes one here


_ODD_TEXT = 'x\x00 é \u2028 " \\ / \x1f \t \x7f \U0001f600 \ud7ff'


@pytest.mark.parametrize("at_ms", [AT, AT + 1, AT + 999, 0])
@pytest.mark.parametrize("causation", [None, "01KDVDNA00RTM8EJVSC655HCJX"])
def test_events_made_here_encode_as_pydantic_would(at_ms: int, causation: str | None) -> None:
    intent = Intent.model_validate(
        {
            **submission(load_topology(), "DISPOSE", "WETH", "USDC", "1.5"),
            "id": "intent-01KDVDNA0001KFJWPM9YWARY2H",
            "createdAtMs": AT,
            "mlFeatures": {"a": 0.1, "b": 1e16, "c": -0.0, "d": 5e-324, "e": 123456789.125},
        }
    )
    payloads: list[tuple[str, WireModel]] = [
        ("intent.submitted", IntentSubmitted(intent=intent, lane="normal")),
        ("risk.approved", RiskApproved(checks=("a", "b"), notional=Decimal("1E+3"))),
        (
            "intent.rejected",
            IntentRejected(
                reason=_ODD_TEXT,
                errors=(FieldError(path=_ODD_TEXT, message="m"),),
                strategy_id="s",
            ),
        ),
        (
            "exec.step_filled",
            ExecStepFilled(
                plan_id="p",
                step_id="p-1",
                venue="sim",
                order_ref="0x" + "ab" * 32,
                asset_in="WETH",
                asset_out="USDC",
                amount_in=Decimal("123456789012345678901234567890.123456789012345678"),
                amount_out=Decimal("0.000000000000000001"),
                landed_at=2**62,
            ),
        ),
    ]
    for topic, payload in payloads:
        event = make_event(
            topic, payload, correlation_id=intent.id, seq=3, causation_id=causation,
            at_ms=at_ms, id_ms=AT,
        )  # fmt: skip
        assert made_wire(event)
        assert encode_event(event) == _pydantic_json(event), topic
        if topic != "intent.rejected":  # its U+0000 comes back as U+FFFD
            assert decode_event(encode_event(event)) == event


def test_decoded_events_are_encoded_by_pydantic() -> None:
    # A decoded payload may hold a NaN (JSON parsers take it): pydantic writes "NaN".
    raw = (
        b'{"eventId":"x","timestamp":"2026-01-01T00:00:00Z","topic":"intent.cancelled",'
        b'"correlationId":"c","seq":1,"version":1,"payload":{"reason":NaN}}'
    )
    event = decode_event(raw)
    assert not made_wire(event)
    assert b'"reason":"NaN"' in encode_event(event)
