"""The event envelope: deterministic ids, wire shape, typed payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from pipeline.codec import decode_event, encode_event
from pipeline.ids import is_ulid, ulid_timestamp_ms
from pipeline.models import EVENT_TYPES, PAYLOAD_TYPES, Event, make_event
from pipeline.models.events import (
    ExecFailed,
    IntentCancelled,
    IntentRejected,
    RiskApproved,
    RiskRejected,
)

# The event types ARCHITECTURE.md names ("Event types" section).
DOCUMENTED_TYPES = {
    "intent.submitted",
    "intent.rejected",
    "risk.approved",
    "risk.rejected",
    "intent.accepted",
    "intent.prioritised",
    "plan.created",
    "plan.rejected",
    "exec.started",
    "exec.step_submitted",
    "exec.step_filled",
    "exec.step_failed",
    "exec.completed",
    "exec.failed",
    "intent.expired",
    "intent.cancelled",
    # The control plane's (sep.control; pipeline.models.control).
    "control.killed",
    "control.resumed",
    "risk.limits_changed",
    "strategy.enabled",
    "strategy.disabled",
    "strategy.configured",
    "venue.breaker_changed",  # pipeline.breakers (docs/kill_switch.md)
    "risk.state_changed",
}


def event(
    topic: str = "intent.cancelled",
    *,
    correlation: str = "intent-A",
    seq: int = 1,
    id_ms: int = 1_000,
    at_ms: int = 5_000,
    causation: str | None = None,
) -> Event:
    payload = (
        IntentCancelled(reason="operator")
        if topic == "intent.cancelled"
        else ExecFailed(plan_id="plan-1", reason="x")
    )
    return make_event(
        topic,
        payload,
        correlation_id=correlation,
        seq=seq,
        causation_id=causation,
        at_ms=at_ms,
        id_ms=id_ms,
    )


def test_every_documented_event_type_has_a_payload_model() -> None:
    assert set(EVENT_TYPES) == DOCUMENTED_TYPES
    assert set(PAYLOAD_TYPES) == DOCUMENTED_TYPES


def test_event_id_is_a_ulid_stamped_with_id_ms() -> None:
    e = event(id_ms=123_456)
    assert is_ulid(e.event_id)
    assert ulid_timestamp_ms(e.event_id) == 123_456


def test_same_inputs_give_the_same_event_id() -> None:
    assert event().event_id == event().event_id


def test_event_id_ignores_when_it_happened() -> None:
    # A redelivered record is re-processed later: the id must not change with the clock.
    assert event(at_ms=5_000).event_id == event(at_ms=9_999_999).event_id


def test_event_id_ignores_the_causation() -> None:
    assert event(causation=None).event_id == event(causation="01ARYZ6S41TSV4RRFFQ69G5FAV").event_id


@pytest.mark.parametrize(
    "changed",
    [
        {"correlation": "intent-B"},
        {"seq": 2},
        {"topic": "exec.failed"},
        {"id_ms": 1_001},
    ],
)
def test_event_id_differs_when_an_identity_input_differs(changed: dict[str, object]) -> None:
    assert event(**changed).event_id != event().event_id  # type: ignore[arg-type]


def test_timestamp_is_utc_from_at_ms() -> None:
    e = event(at_ms=1_700_000_000_250)
    assert e.timestamp == datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC)


def test_unknown_topic_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown event type 'intent\.teleported'"):
        make_event(
            "intent.teleported",
            IntentCancelled(reason="x"),
            correlation_id="intent-A",
            seq=1,
            causation_id=None,
            at_ms=0,
            id_ms=0,
        )


def test_seq_starts_at_one() -> None:
    with pytest.raises(ValidationError):
        event(seq=0)


def test_wire_form_is_camel_case_and_omits_absent_causation() -> None:
    wire = orjson.loads(encode_event(event(causation=None)))
    assert set(wire) == {
        "eventId",
        "timestamp",
        "topic",
        "correlationId",
        "seq",
        "version",
        "payload",
    }
    wire = orjson.loads(encode_event(event(causation="01ARYZ6S41TSV4RRFFQ69G5FAV")))
    assert wire["causationId"] == "01ARYZ6S41TSV4RRFFQ69G5FAV"
    assert wire["correlationId"] == "intent-A"
    assert wire["version"] == 1


def test_timestamp_on_the_wire_is_iso_8601_utc() -> None:
    wire = orjson.loads(encode_event(event(at_ms=1_700_000_000_250)))
    parsed = datetime.fromisoformat(wire["timestamp"].replace("Z", "+00:00"))
    assert parsed == datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC)
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0


def test_payload_is_stored_in_wire_form() -> None:
    e = make_event(
        "risk.approved",
        RiskApproved(checks=("max_notional",), notional=Decimal("1500.50")),
        correlation_id="intent-A",
        seq=2,
        causation_id=None,
        at_ms=0,
        id_ms=0,
    )
    assert e.payload == {"checks": ["max_notional"], "notional": "1500.50"}


def test_round_trip_through_the_codec() -> None:
    e = make_event(
        "intent.rejected",
        IntentRejected(reason="bad", dead_letter_key="dl-1", strategy_id="s"),
        correlation_id="intent-A",
        seq=1,
        causation_id=None,
        at_ms=1,
        id_ms=1,
    )
    again = decode_event(encode_event(e))
    assert again == e
    assert encode_event(again) == encode_event(e)


def test_parse_payload_gives_the_typed_model() -> None:
    e = make_event(
        "risk.rejected",
        RiskRejected(rule="max_notional", message="too big", limit="10", actual="11"),
        correlation_id="intent-A",
        seq=2,
        causation_id=None,
        at_ms=0,
        id_ms=0,
    )
    parsed = decode_event(encode_event(e)).parse_payload()
    assert isinstance(parsed, RiskRejected)
    assert (parsed.rule, parsed.limit, parsed.actual) == ("max_notional", "10", "11")


def test_parse_payload_rejects_a_payload_of_another_type() -> None:
    e = event()
    forged = e.model_copy(update={"topic": "exec.failed"})
    with pytest.raises(ValidationError):
        forged.parse_payload()


def test_envelope_rejects_unknown_fields() -> None:
    wire = orjson.loads(encode_event(event()))
    wire["partition"] = 3
    with pytest.raises(ValidationError) as info:
        Event.model_validate(wire)
    assert info.value.errors()[0]["loc"] == ("partition",)


def _rejected(reason: str) -> Event:
    return make_event(
        "intent.rejected",
        IntentRejected(reason=reason, errors=()),
        correlation_id="intent-x",
        seq=1,
        causation_id=None,
        at_ms=0,
        id_ms=0,
    )


def test_nul_is_encoded_as_the_replacement_character() -> None:
    # PostgreSQL cannot store U+0000: a hostile field name quoted in a rejection must not
    # stop the event store.
    raw = encode_event(_rejected("unexpected field 'a\\x00b'".replace("\\x00", "\x00")))
    assert b"\\u0000" not in raw
    assert decode_event(raw).payload["reason"] == "unexpected field 'a\ufffdb'"


def test_a_backslash_before_u0000_as_text_is_kept() -> None:
    text = "path\\u0000 and \\\x00"  # the text \u0000, then a backslash and a real NUL
    decoded = decode_event(encode_event(_rejected(text))).payload["reason"]
    assert decoded == "path\\u0000 and \\\ufffd"
