"""Ingest: raw bytes -> intent.submitted, or intent.rejected plus the raw bytes dead-lettered."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.ids import is_ulid, ulid_timestamp_ms
from pipeline.models.events import Event, IntentRejected, IntentSubmitted
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.ingest import (
    MAX_RECORD_BYTES,
    OUTPUT_TOPIC,
    IngestOutcome,
    build,
    dedupe_key,
    ingest_record,
)
from pipeline.stages.rejections import DEADLETTER_TOPIC
from pipeline.topology import Topology, load_topology

TOPOLOGY = load_topology()
T0 = 1_700_000_000_000  # the record's timestamp (producer CreateTime)
NOW = T0 + 250  # when ingest handles it


def body(**overrides: Any) -> dict[str, Any]:
    data = submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1.5", strategy_id="dca",
                      client_intent_id="c-1")
    data.update(overrides)
    return data


def record(value: bytes | dict[str, Any], *, partition: int = 0, offset: int = 0,
           ts: int = T0) -> Record:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Record("sep.intents.submitted", partition, offset, ts, b"dca", raw)


def events_of(outcome: IngestOutcome) -> list[Event]:
    return [decode_event(o.value) for o in outcome.outputs if o.topic == OUTPUT_TOPIC]


def rejection(outcome: IngestOutcome) -> tuple[Event, IntentRejected, Output]:
    """The one intent.rejected event, its payload and the dead-letter output."""
    assert [o.topic for o in outcome.outputs] == [OUTPUT_TOPIC, DEADLETTER_TOPIC]
    (event,) = events_of(outcome)
    assert event.topic == "intent.rejected"
    payload = event.parse_payload()
    assert isinstance(payload, IntentRejected)
    return event, payload, outcome.outputs[1]


# ----------------------------------------------------------------------------- valid input


def test_valid_submission_becomes_intent_submitted() -> None:
    outcome = ingest_record(record(body()), MemoryTable(), NOW)
    assert [o.topic for o in outcome.outputs] == [OUTPUT_TOPIC]
    (event,) = events_of(outcome)
    assert event.topic == "intent.submitted"
    assert event.seq == 1
    assert event.causation_id is None
    assert event.correlation_id == outcome.intent_id
    intent = IntentSubmitted.model_validate(event.payload).intent
    assert intent.id == outcome.intent_id
    assert intent.id.startswith("intent-")
    assert is_ulid(intent.id.removeprefix("intent-"))
    # The time window counts from the record's own timestamp, not from when ingest ran.
    assert intent.created_at_ms == T0
    assert ulid_timestamp_ms(intent.id.removeprefix("intent-")) == T0
    assert intent.strategy_id == "dca"
    assert intent.client_intent_id == "c-1"
    assert str(intent.subject.amount) == "1.5"
    assert event.timestamp.timestamp() * 1000 == pytest.approx(NOW)


def test_output_is_keyed_by_intent_id() -> None:
    outcome = ingest_record(record(body()), MemoryTable(), NOW)
    assert outcome.outputs[0].key == outcome.intent_id.encode()  # type: ignore[union-attr]


def test_redelivered_record_gets_the_same_intent_and_event_ids() -> None:
    seen = MemoryTable()
    first = ingest_record(record(body(), partition=3, offset=42), seen, NOW)
    seen.set(first.dedupe_key, first.intent_id, record(b""))  # type: ignore[arg-type]
    # Redelivered after a crash: same record, handled later, dedupe state already written.
    again = ingest_record(record(body(), partition=3, offset=42), seen, NOW + 60_000)
    assert again.duplicate_of is None
    assert again.intent_id == first.intent_id
    assert [e.event_id for e in events_of(again)] == [e.event_id for e in events_of(first)]


def test_redelivered_record_without_client_id_gets_the_same_intent_id() -> None:
    data = body()
    del data["clientIntentId"]
    first = ingest_record(record(data, partition=1, offset=9), MemoryTable(), NOW)
    again = ingest_record(record(data, partition=1, offset=9), MemoryTable(), NOW + 5)
    assert first.dedupe_key is None
    assert again.intent_id == first.intent_id
    assert events_of(again)[0].event_id == events_of(first)[0].event_id
    # Without a client id every record is its own intent: another offset, another intent.
    other = ingest_record(record(data, partition=1, offset=10), MemoryTable(), NOW)
    assert other.intent_id != first.intent_id


def test_different_client_ids_are_different_intents() -> None:
    a = ingest_record(record(body(clientIntentId="a")), MemoryTable(), NOW)
    b = ingest_record(record(body(clientIntentId="b")), MemoryTable(), NOW)
    assert a.intent_id != b.intent_id
    assert a.dedupe_key != b.dedupe_key


# ----------------------------------------------------------------------------- duplicates


def test_same_client_id_in_a_new_record_is_a_duplicate() -> None:
    seen = MemoryTable()
    first = ingest_record(record(body(), offset=1), seen, NOW)
    seen[dedupe_key("dca", "c-1")] = first.intent_id  # type: ignore[assignment]
    dup = ingest_record(record(body(), offset=2, ts=T0 + 1_000), seen, NOW + 1_000)
    assert dup.outputs == ()
    assert dup.duplicate_of == first.intent_id
    assert dup.dedupe_key == dedupe_key("dca", "c-1")


def test_same_client_id_of_another_strategy_is_not_a_duplicate() -> None:
    seen = MemoryTable()
    first = ingest_record(record(body(), offset=1), seen, NOW)
    seen[dedupe_key("dca", "c-1")] = first.intent_id  # type: ignore[assignment]
    other = ingest_record(record(body(strategyId="momentum"), offset=2, ts=T0 + 1), seen, NOW)
    assert other.duplicate_of is None
    assert len(other.outputs) == 1


def test_dedupe_keys_of_different_pairs_never_collide() -> None:
    # A separator that may occur inside the ids makes two different pairs one key: then
    # one strategy's intent is silently dropped as a "duplicate" of another's.
    seen = MemoryTable()
    first = ingest_record(record(body(strategyId="a\x1fb", clientIntentId="c"), offset=1),
                          seen, NOW)
    if first.dedupe_key is not None and first.intent_id is not None:
        seen[first.dedupe_key] = first.intent_id
    second = ingest_record(record(body(strategyId="a", clientIntentId="b\x1fc"), offset=2,
                                  ts=T0 + 1), seen, NOW)
    assert second.duplicate_of is None
    assert second.outputs


def test_dedupe_key_is_one_key_per_pair() -> None:
    pairs = [("a\x1fb", "c"), ("a", "b\x1fc"), ("a", "bc"), ("ab", "c"), ('a"', ""), ("a", '"')]
    assert len({dedupe_key(s, c) for s, c in pairs}) == len(pairs)


@pytest.mark.parametrize("field", ["strategyId", "clientIntentId"])
@pytest.mark.parametrize("value", ["a\x1fb", "line\nbreak", "nul\x00", "del\x7f", "c1\x85"])
def test_control_characters_in_ids_are_refused_with_the_path(field: str, value: str) -> None:
    _, payload, _ = rejection(ingest_record(record(body(**{field: value})), MemoryTable(), NOW))
    [error] = payload.errors
    assert error.path == field
    assert "control characters" in error.message


async def test_stage_drops_duplicates_and_remembers_accepted_ids() -> None:
    context = StageContext(TOPOLOGY, Settings(), clock=lambda: NOW)
    stage = build(context)
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process([record(body(), offset=1),
                         record(body(), offset=2, ts=T0 + 5),  # same client id: duplicate
                         record(body(clientIntentId="c-2"), offset=3)], emit)
    assert stage.duplicates == 1
    topics = [decode_event(o.value).topic for o in sent]
    assert topics == ["intent.submitted", "intent.submitted"]
    ids = [decode_event(o.value).correlation_id for o in sent]
    assert len(set(ids)) == 2

    # The redelivery of the first record is not a duplicate of itself: it re-emits.
    sent.clear()
    await stage.process([record(body(), offset=1)], emit)
    assert stage.duplicates == 1
    assert [decode_event(o.value).correlation_id for o in sent] == ids[:1]


# ----------------------------------------------------------------------------- bad input


def assert_dead_letter(record_: Record, event: Event, payload: IntentRejected,
                       dl: Output) -> None:
    assert dl.topic == DEADLETTER_TOPIC
    assert payload.dead_letter_key is not None
    assert dl.key == payload.dead_letter_key.encode()
    assert dl.value == record_.value  # the raw bytes, untouched
    headers = dict(dl.headers)
    assert headers["sep-reason"] == payload.reason.encode()
    assert orjson.loads(headers["sep-errors"]) == [
        {"path": e.path, "message": e.message} for e in payload.errors]
    assert headers["sep-source"] == (
        f"{record_.topic}/{record_.partition}/{record_.offset}".encode())
    assert headers["sep-correlation-id"] == event.correlation_id.encode()
    assert event.seq == 1
    assert event.correlation_id.startswith("intent-")


@pytest.mark.parametrize(
    ("raw", "reason", "message_part"),
    [
        (b'{"strategyId": "dca",', "not valid JSON", ""),
        (b"", "not valid JSON", ""),
        (b"\xff\xfe\x00", "not valid JSON", ""),
        (b"[1, 2]", "not a JSON object", "got list"),
        (b'"an intent"', "not a JSON object", "got str"),
        (b"null", "not a JSON object", "got NoneType"),
    ],
)
def test_unparseable_input_is_rejected_at_the_root(raw: bytes, reason: str,
                                                   message_part: str) -> None:
    rec = record(raw, partition=2, offset=7)
    event, payload, dl = rejection(ingest_record(rec, MemoryTable(), NOW))
    assert payload.reason == reason
    assert [e.path for e in payload.errors] == [""]
    assert message_part in payload.errors[0].message
    assert payload.strategy_id is None
    assert_dead_letter(rec, event, payload, dl)


def test_oversized_record_is_rejected_before_parsing() -> None:
    raw = b" " * (MAX_RECORD_BYTES + 1)  # not even JSON: size is checked first
    rec = record(raw)
    event, payload, dl = rejection(ingest_record(rec, MemoryTable(), NOW))
    assert payload.reason == "record too large"
    assert str(MAX_RECORD_BYTES) in payload.errors[0].message
    assert_dead_letter(rec, event, payload, dl)


def test_record_of_exactly_the_limit_is_accepted() -> None:
    raw = orjson.dumps(body())
    raw = raw + b" " * (MAX_RECORD_BYTES - len(raw))  # JSON allows trailing whitespace
    assert len(raw) == MAX_RECORD_BYTES
    outcome = ingest_record(record(raw), MemoryTable(), NOW)
    assert [e.topic for e in events_of(outcome)] == ["intent.submitted"]


def _without(path: str) -> dict[str, Any]:
    data = body()
    node: Any = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[leaf]
    return data


def _with(path: str, value: Any) -> dict[str, Any]:
    data = body()
    node: Any = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return data


@pytest.mark.parametrize(
    ("data", "paths"),
    [
        (_without("strategyId"), {"strategyId"}),
        (_without("type"), {"type"}),
        (_without("constraints.timeWindowMs"), {"constraints.timeWindowMs"}),
        (_without("assets.0.asset.chainId"), {"assets.0.asset.chainId"}),
        (_with("type", "BUY"), {"type"}),
        (_with("constraints.timeWindowMs", "five minutes"), {"constraints.timeWindowMs"}),
        (_with("constraints.maxSlippage", "lots"), {"constraints.maxSlippage"}),
        (_with("assets.0.amount", "one"), {"assets.0.amount"}),
        (_with("assets.0.amount", [1]), {"assets.0.amount"}),
        (_with("assets.0.asset.decimals", "six"), {"assets.0.asset.decimals"}),
        (_with("strategyId", 7), {"strategyId"}),
        (_with("constraints.allowedVenues", "sim"), {"constraints.allowedVenues"}),
        (_with("unexpected", True), {"unexpected"}),
        (_with("id", "intent-mine"), {"id"}),
    ],
)
def test_schema_errors_are_rejected_with_camel_case_paths(data: dict[str, Any],
                                                          paths: set[str]) -> None:
    rec = record(data, offset=11)
    event, payload, dl = rejection(ingest_record(rec, MemoryTable(), NOW))
    assert {e.path for e in payload.errors} == paths
    assert payload.reason.startswith("invalid intent: ")
    for path in paths:
        assert path in payload.reason  # the summary names where, so a person can fix it
    assert_dead_letter(rec, event, payload, dl)


@pytest.mark.parametrize("path", ["assets.0.amount", "assets.1.asset.decimals"])
def test_an_invalid_asset_item_draws_no_spurious_length_error(path: str) -> None:
    # Two assets were given; telling the sender "assets: Tuple should have at least 2 items
    # after validation, not 0" sends them looking for a mistake they did not make.
    rec = record(_with(path, "not-a-number"))
    _, payload, _ = rejection(ingest_record(rec, MemoryTable(), NOW))
    assert [(e.path, e.message) for e in payload.errors if e.path == "assets"] == []
    assert {e.path for e in payload.errors} == {path}


def test_rejection_keeps_who_sent_it_when_readable() -> None:
    data = _with("type", "BUY")
    _, payload, _ = rejection(ingest_record(record(data), MemoryTable(), NOW))
    assert payload.strategy_id == "dca"
    assert payload.client_intent_id == "c-1"


def test_missing_fields_are_all_named() -> None:
    rec = record({"strategyId": "dca"})
    _, payload, _ = rejection(ingest_record(rec, MemoryTable(), NOW))
    assert {e.path for e in payload.errors} == {"type", "assets", "constraints"}


def test_summary_counts_what_it_leaves_out() -> None:
    _, payload, _ = rejection(ingest_record(record({"x": 1, "y": 2}), MemoryTable(), NOW))
    assert len(payload.errors) == 6  # 4 missing fields + 2 unknown ones
    assert payload.reason.endswith("(+3 more)")


def test_negative_amount_passes_ingest_and_is_left_to_validate() -> None:
    # The wire schema only says "a finite decimal"; "must be > 0" is a semantic check that
    # validate makes (and reports as assets.0.amount) - see tests/stages/test_validate.py.
    outcome = ingest_record(record(_with("assets.0.amount", "-1")), MemoryTable(), NOW)
    (event,) = events_of(outcome)
    assert event.topic == "intent.submitted"


def test_bad_record_is_not_remembered_for_dedupe() -> None:
    outcome = ingest_record(record(_with("type", "BUY")), MemoryTable(), NOW)
    assert outcome.dedupe_key is None


def test_rejection_ids_are_stable_for_a_redelivered_record() -> None:
    rec = record(b"garbage", partition=5, offset=99)
    first = ingest_record(rec, MemoryTable(), NOW)
    again = ingest_record(rec, MemoryTable(), NOW + 10_000)
    assert first.outputs[1].key == again.outputs[1].key
    assert events_of(first)[0].event_id == events_of(again)[0].event_id
    # ...and differ for another record.
    other = ingest_record(record(b"garbage", partition=5, offset=100), MemoryTable(), NOW)
    assert other.outputs[1].key != first.outputs[1].key
    assert events_of(other)[0].correlation_id != events_of(first)[0].correlation_id


@pytest.mark.parametrize("amount", ["1e100000", "1e-100000"])
def test_a_small_record_cannot_become_a_huge_event(amount: str) -> None:
    # Amounts go on the wire in plain notation ("1000", never "1E+3"), so an exponent in the
    # input is expanded: 1e100000 turns a 400-byte record into a 100 kB event (and 1e999999999
    # into a gigabyte).  Input that large must be refused at the door, with its path.
    rec = record(_with("assets.0.amount", amount))
    assert len(rec.value) < 1_000
    outcome = ingest_record(rec, MemoryTable(), NOW)
    assert all(len(o.value) <= MAX_RECORD_BYTES for o in outcome.outputs)
    _, payload, _ = rejection(outcome)
    assert {e.path for e in payload.errors} - {"assets"} == {"assets.0.amount"}


@pytest.mark.parametrize("amount", ["0E-100000", "0e+100000", "1.5" + "0" * 900])
def test_zeros_are_not_expanded_either(amount: str) -> None:
    # "0E-100000" has no digit the bounds count, yet in plain notation it is 100 000 zeros;
    # trailing zeros are dropped past the wire's 36 decimal places, which is exact.
    outcome = ingest_record(record(_with("assets.0.amount", amount)), MemoryTable(), NOW)
    (event,) = events_of(outcome)
    assert event.topic == "intent.submitted"
    assert all(len(o.value) <= 2_000 for o in outcome.outputs)
    wire = event.payload["intent"]["assets"][0]["amount"]
    assert Decimal(wire) == Decimal(amount)
    assert len(wire.partition(".")[2]) <= 36


def test_topology_fixture_matches_the_samples() -> None:
    # The sample builder uses the topology's assets verbatim, so ingest sees registered assets.
    assert isinstance(TOPOLOGY, Topology)
    assert body()["assets"][0]["asset"] == TOPOLOGY.asset("WETH").to_wire()
