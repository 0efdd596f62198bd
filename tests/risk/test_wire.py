"""The risk book's facts read from JSON equal what the event models make of the same events."""

from __future__ import annotations

from decimal import Decimal

import orjson

from pipeline.codec import encode_event
from pipeline.models.events import Event, ExecStepFilled, IntentAccepted
from pipeline.models.intent import Intent
from pipeline.risk import wire
from pipeline.risk.book import Fill, OpenIntent, RiskBook
from pipeline.risk.feed import apply_record
from tests.risk.risk_support import T0, accepted, filled, intent


def _payload(event: Event) -> dict[str, object]:
    return orjson.loads(encode_event(event))["payload"]  # type: ignore[no-any-return]


def test_an_acceptance_read_from_json_is_the_models_open_intent() -> None:
    for i in (
        intent("ACQUIRE", "WETH", "1.5", window_ms=60_000),
        intent("DISPOSE", "WBTC", "0.000001", counter="WETH", strategy="s-2"),
    ):
        event = accepted(i)
        read = wire.open_intent(_payload(event))
        assert read == OpenIntent.of(event.payload_as(IntentAccepted).intent)
        assert read.deadline_ms == i.created_at_ms + i.constraints.time_window_ms  # type: ignore[operator]


def test_an_intent_without_creation_time_has_no_deadline_either_way() -> None:
    i = Intent.model_validate({**intent().model_dump(by_alias=True), "createdAtMs": None})
    payload = {"intent": orjson.loads(i.model_dump_json(by_alias=True, exclude_none=True))}
    assert wire.open_intent(payload) == OpenIntent.of(i)
    assert wire.open_intent(payload).deadline_ms is None


def test_a_fill_read_from_json_is_the_models_fill_to_the_millisecond() -> None:
    i = intent()
    event = filled(i, "USDC", "3000.123456", "WETH", "1.000000000000000001", at_ms=T0 + 1_234)
    raw = orjson.loads(encode_event(event))
    read = wire.fill(raw["payload"], raw["timestamp"])
    assert read == Fill.of(event.payload_as(ExecStepFilled), event)
    assert read.at_ms == T0 + 1_234
    assert read.amount_out == Decimal("1.000000000000000001")


def test_a_record_missing_what_the_book_reads_is_skipped_and_changes_nothing() -> None:
    b = RiskBook("USDC", {"WETH": Decimal(3000)})
    i = intent()
    value = encode_event(accepted(i)).replace(b'"strategyId"', b'"strategy"')
    assert not apply_record(b, value)
    assert not apply_record(b, b'{"topic":"exec.step_filled","payload":{"stepId":"x"}}')
    assert list(b.open_intents("s1")) == []
    assert b.applied == 0


def test_an_own_approval_read_back_opens_what_its_json_says() -> None:
    for i in (
        intent("ACQUIRE", "WETH", "1.50", window_ms=60_000),
        intent("DISPOSE", "WBTC", "0.000001", counter="WETH", strategy="s-2"),
    ):
        value = encode_event(accepted(i))
        own, other = RiskBook("USDC", {}), RiskBook("USDC", {})
        own.expect(OpenIntent.of(i))
        assert apply_record(own, value)
        assert apply_record(other, value)
        assert list(own.open_intents(i.strategy_id)) == list(other.open_intents(i.strategy_id))
        assert own.applied == other.applied == 1
        assert own.take_expected(i.id) is None  # taken once


def test_fills_in_turn_read_each_their_own_time() -> None:
    i = intent()
    for at_ms in (T0, T0, T0 + 1, T0 + 86_400_000, T0):
        raw = orjson.loads(encode_event(filled(i, "USDC", "1", "WETH", "1", at_ms=at_ms)))
        assert wire.fill(raw["payload"], raw["timestamp"]).at_ms == at_ms
