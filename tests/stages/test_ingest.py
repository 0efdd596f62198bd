"""Ingest: raw bytes -> intent.submitted, or intent.rejected plus the raw bytes dead-lettered."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.client import predicted_intent_id
from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.ids import is_ulid, ulid_timestamp_ms
from pipeline.intent_ids import submission_key
from pipeline.limits import (
    DEAD_LETTER_PREFIX_BYTES,
    MAX_FIELD_ERROR_CHARS,
    MAX_FIELD_ERRORS,
    MAX_PRODUCED_RECORD_BYTES,
    MAX_REASON_CHARS,
)
from pipeline.limits import MAX_INPUT_RECORD_BYTES as MAX_RECORD_BYTES
from pipeline.models.events import Event, IntentRejected, IntentSubmitted
from pipeline.ops import kafka_partition
from pipeline.samples import submission
from pipeline.stages.base import Output, Record, StageContext, now_ms
from pipeline.stages.ingest import (
    IngestOutcome,
    build,
    ingest_record,
)
from pipeline.stages.rejections import DEADLETTER_TOPIC
from pipeline.store.dedupe import MemoryDedupeStore, dedupe_key
from pipeline.topology import Topology, load_topology
from tests.lanes_support import lanes_on

TOPOLOGY = load_topology()
OUTPUT_TOPIC = INGESTED = TOPOLOGY.stage("ingest").events_topic
LANED = lanes_on()
LANE_TOPICS = LANED.lanes.topics if LANED.lanes else (INGESTED,)
T0 = 1_700_000_000_000  # the record's timestamp (producer CreateTime)
NOW = T0 + 250  # when ingest handles it


def body(**overrides: Any) -> dict[str, Any]:
    data = submission(
        TOPOLOGY, "DISPOSE", "WETH", "USDC", "1.5", strategy_id="dca", client_intent_id="c-1"
    )
    data.update(overrides)
    return data


def record(
    value: bytes | dict[str, Any], *, partition: int = 0, offset: int = 0, ts: int = T0
) -> Record:
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
    outcome = ingest_record(record(body()), {}, NOW, topic=INGESTED)
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
    outcome = ingest_record(record(body()), {}, NOW, topic=INGESTED)
    assert outcome.outputs[0].key == outcome.intent_id.encode()  # type: ignore[union-attr]


PARTITIONS = TOPOLOGY.topic(INGESTED).partitions
TO_INGESTED: dict[str, Any] = {"topic": INGESTED, "partitions": PARTITIONS}


@pytest.mark.parametrize("partition", range(PARTITIONS))
def test_every_id_lands_on_the_partition_its_record_was_read_from(partition: int) -> None:
    # So ingest is fused with the chain after it: what it writes stays on the partition
    # number it read (pipeline.intent_ids), with a client id, without one, and rejected.
    no_client = body()
    del no_client["clientIntentId"]
    outcomes = [
        ingest_record(
            record(data, partition=partition), {}, NOW, topic=INGESTED, partitions=PARTITIONS
        )
        for data in (body(), no_client, b"not json")
    ]
    assert [o.rejected is None for o in outcomes] == [True, True, False]
    for outcome in outcomes:
        (output, *_) = outcome.outputs
        assert output.key == outcome.intent_id.encode()  # type: ignore[union-attr]
        assert kafka_partition(output.key, PARTITIONS) == partition


def test_a_clients_prediction_is_the_id_on_any_partition() -> None:
    for partition in (0, 5, 11):  # 11: an input topic with more partitions wraps round
        outcome = ingest_record(
            record(body(), partition=partition), {}, NOW, topic=INGESTED, partitions=PARTITIONS
        )
        assert outcome.intent_id == predicted_intent_id(T0, "dca", "c-1", partition=partition)
    # By default the client predicts the partition Kafka's default partitioner gives its key.
    landed = kafka_partition(submission_key("dca", "c-1").encode(), PARTITIONS)
    outcome = ingest_record(
        record(body(), partition=landed), {}, NOW, topic=INGESTED, partitions=PARTITIONS
    )
    assert outcome.intent_id == predicted_intent_id(T0, "dca", "c-1")


def test_redelivered_record_gets_the_same_intent_and_event_ids() -> None:
    seen: dict[str, str] = {}
    first = ingest_record(record(body(), partition=3, offset=42), seen, NOW, topic=INGESTED)
    seen[first.dedupe_key] = first.intent_id  # type: ignore[index,assignment]
    # Redelivered after a crash: same record, handled later, its key already claimed by it.
    again = ingest_record(
        record(body(), partition=3, offset=42), seen, NOW + 60_000, topic=INGESTED
    )
    assert again.duplicate_of is None
    assert again.intent_id == first.intent_id
    assert [e.event_id for e in events_of(again)] == [e.event_id for e in events_of(first)]


def test_redelivered_record_without_client_id_gets_the_same_intent_id() -> None:
    data = body()
    del data["clientIntentId"]
    first = ingest_record(record(data, partition=1, offset=9), {}, NOW, topic=INGESTED)
    again = ingest_record(record(data, partition=1, offset=9), {}, NOW + 5, topic=INGESTED)
    assert first.dedupe_key is None
    assert again.intent_id == first.intent_id
    assert events_of(again)[0].event_id == events_of(first)[0].event_id
    # Without a client id every record is its own intent: another offset, another intent.
    other = ingest_record(record(data, partition=1, offset=10), {}, NOW, topic=INGESTED)
    assert other.intent_id != first.intent_id


def test_different_client_ids_are_different_intents() -> None:
    a = ingest_record(record(body(clientIntentId="a")), {}, NOW, topic=INGESTED)
    b = ingest_record(record(body(clientIntentId="b")), {}, NOW, topic=INGESTED)
    assert a.intent_id != b.intent_id
    assert a.dedupe_key != b.dedupe_key


# ----------------------------------------------------------------------------- duplicates


def test_same_client_id_in_a_new_record_is_a_duplicate() -> None:
    seen: dict[str, str] = {}
    first = ingest_record(record(body(), offset=1), seen, NOW, topic=INGESTED)
    seen[dedupe_key("dca", "c-1")] = first.intent_id  # type: ignore[assignment]
    dup = ingest_record(record(body(), offset=2, ts=T0 + 1_000), seen, NOW + 1_000, topic=INGESTED)
    assert dup.outputs == ()
    assert dup.duplicate_of == first.intent_id
    assert dup.dedupe_key == dedupe_key("dca", "c-1")


def test_same_client_id_of_another_strategy_is_not_a_duplicate() -> None:
    seen: dict[str, str] = {}
    first = ingest_record(record(body(), offset=1), seen, NOW, topic=INGESTED)
    seen[dedupe_key("dca", "c-1")] = first.intent_id  # type: ignore[assignment]
    other = ingest_record(
        record(body(strategyId="momentum"), offset=2, ts=T0 + 1), seen, NOW, topic=INGESTED
    )
    assert other.duplicate_of is None
    assert len(other.outputs) == 1


def test_dedupe_keys_of_different_pairs_never_collide() -> None:
    # A separator that may occur inside the ids makes two different pairs one key: then
    # one strategy's intent is silently dropped as a "duplicate" of another's.
    seen: dict[str, str] = {}
    first = ingest_record(
        record(body(strategyId="a\x1fb", clientIntentId="c"), offset=1), seen, NOW, topic=INGESTED
    )
    if first.dedupe_key is not None and first.intent_id is not None:
        seen[first.dedupe_key] = first.intent_id
    second = ingest_record(
        record(body(strategyId="a", clientIntentId="b\x1fc"), offset=2, ts=T0 + 1),
        seen,
        NOW,
        topic=INGESTED,
    )
    assert second.duplicate_of is None
    assert second.outputs


def test_dedupe_key_is_one_key_per_pair() -> None:
    pairs = [("a\x1fb", "c"), ("a", "b\x1fc"), ("a", "bc"), ("ab", "c"), ('a"', ""), ("a", '"')]
    assert len({dedupe_key(s, c) for s, c in pairs}) == len(pairs)


@pytest.mark.parametrize("field", ["strategyId", "clientIntentId"])
@pytest.mark.parametrize("value", ["a\x1fb", "line\nbreak", "nul\x00", "del\x7f", "c1\x85"])
def test_control_characters_in_ids_are_refused_with_the_path(field: str, value: str) -> None:
    _, payload, _ = rejection(
        ingest_record(record(body(**{field: value})), {}, NOW, topic=INGESTED)
    )
    [error] = payload.errors
    assert error.path == field
    assert "control characters" in error.message


async def test_stage_drops_duplicates_and_remembers_accepted_ids() -> None:
    context = StageContext(
        TOPOLOGY, Settings(), clock=lambda: NOW, dedupe=MemoryDedupeStore(3600, clock=lambda: NOW)
    )
    stage = build(context)
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process(
        [
            record(body(), offset=1),
            record(body(), offset=2, ts=T0 + 5),  # same client id: duplicate
            record(body(clientIntentId="c-2"), offset=3),
        ],
        emit,
    )
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


def assert_dead_letter(record_: Record, event: Event, payload: IntentRejected, dl: Output) -> None:
    assert dl.topic == DEADLETTER_TOPIC
    assert payload.dead_letter_key is not None
    assert dl.key == payload.dead_letter_key.encode()
    headers = dict(dl.headers)
    if len(record_.value) <= DEAD_LETTER_PREFIX_BYTES:
        assert dl.value == record_.value  # the raw bytes, untouched
        assert headers["sep-truncated"] == b"false"
    else:
        assert dl.value == record_.value[:DEAD_LETTER_PREFIX_BYTES]
        assert headers["sep-truncated"] == b"true"
    assert headers["sep-original-bytes"] == str(len(record_.value)).encode()
    assert headers["sep-sha256"] == hashlib.sha256(record_.value).hexdigest().encode()
    assert headers["sep-reason"] == payload.reason.encode()
    assert orjson.loads(headers["sep-errors"]) == [
        {"path": e.path, "message": e.message} for e in payload.errors
    ]
    assert headers["sep-source"] == (
        f"{record_.topic}/{record_.partition}/{record_.offset}".encode()
    )
    assert headers["sep-correlation-id"] == event.correlation_id.encode()
    assert event.seq == 1
    assert event.correlation_id.startswith("intent-")


@pytest.mark.parametrize(
    ("raw", "reason", "message_part"),
    [
        (b'{"strategyId": "dca",', "not valid JSON", ""),
        (b"\xff\xfe\x00", "not valid JSON", ""),
        (b"[1, 2]", "not a JSON object", "got list"),
        (b'"an intent"', "not a JSON object", "got str"),
        (b"null", "not a JSON object", "got NoneType"),
    ],
)
def test_unparseable_input_is_rejected_at_the_root(
    raw: bytes, reason: str, message_part: str
) -> None:
    rec = record(raw, partition=2, offset=7)
    event, payload, dl = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
    assert payload.reason == reason
    assert [e.path for e in payload.errors] == [""]
    assert message_part in payload.errors[0].message
    assert payload.strategy_id is None
    assert_dead_letter(rec, event, payload, dl)


def test_oversized_record_is_rejected_before_parsing() -> None:
    raw = b" " * (MAX_RECORD_BYTES + 1)  # not even JSON: size is checked first
    rec = record(raw)
    event, payload, dl = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
    assert payload.reason == "record too large"
    assert str(MAX_RECORD_BYTES) in payload.errors[0].message
    assert_dead_letter(rec, event, payload, dl)


def test_record_of_exactly_the_limit_is_accepted() -> None:
    raw = orjson.dumps(body())
    raw = raw + b" " * (MAX_RECORD_BYTES - len(raw))  # JSON allows trailing whitespace
    assert len(raw) == MAX_RECORD_BYTES
    outcome = ingest_record(record(raw), {}, NOW, topic=INGESTED)
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
def test_schema_errors_are_rejected_with_camel_case_paths(
    data: dict[str, Any], paths: set[str]
) -> None:
    rec = record(data, offset=11)
    event, payload, dl = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
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
    _, payload, _ = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
    assert [(e.path, e.message) for e in payload.errors if e.path == "assets"] == []
    assert {e.path for e in payload.errors} == {path}


def test_rejection_keeps_who_sent_it_when_readable() -> None:
    data = _with("type", "BUY")
    _, payload, _ = rejection(ingest_record(record(data), {}, NOW, topic=INGESTED))
    assert payload.strategy_id == "dca"
    assert payload.client_intent_id == "c-1"


def test_missing_fields_are_all_named() -> None:
    rec = record({"strategyId": "dca"})
    _, payload, _ = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
    assert {e.path for e in payload.errors} == {"type", "assets", "constraints"}


def test_summary_counts_what_it_leaves_out() -> None:
    _, payload, _ = rejection(ingest_record(record({"x": 1, "y": 2}), {}, NOW, topic=INGESTED))
    assert len(payload.errors) == 6  # 4 missing fields + 2 unknown ones
    assert payload.reason.endswith("(+3 more)")


def test_negative_amount_passes_ingest_and_is_left_to_validate() -> None:
    # The wire schema only says "a finite decimal"; "must be > 0" is a semantic check that
    # validate makes (and reports as assets.0.amount) - see tests/stages/test_validate.py.
    outcome = ingest_record(record(_with("assets.0.amount", "-1")), {}, NOW, topic=INGESTED)
    (event,) = events_of(outcome)
    assert event.topic == "intent.submitted"


def test_bad_record_is_not_remembered_for_dedupe() -> None:
    outcome = ingest_record(record(_with("type", "BUY")), {}, NOW, topic=INGESTED)
    assert outcome.dedupe_key is None


def test_rejection_ids_are_stable_for_a_redelivered_record() -> None:
    rec = record(b"garbage", partition=5, offset=99)
    first = ingest_record(rec, {}, NOW, topic=INGESTED)
    again = ingest_record(rec, {}, NOW + 10_000, topic=INGESTED)
    assert first.outputs[1].key == again.outputs[1].key
    assert events_of(first)[0].event_id == events_of(again)[0].event_id
    # ...and differ for another record.
    other = ingest_record(record(b"garbage", partition=5, offset=100), {}, NOW, topic=INGESTED)
    assert other.outputs[1].key != first.outputs[1].key
    assert events_of(other)[0].correlation_id != events_of(first)[0].correlation_id


@pytest.mark.parametrize("amount", ["1e100000", "1e-100000"])
def test_a_small_record_cannot_become_a_huge_event(amount: str) -> None:
    # Amounts go on the wire in plain notation ("1000", never "1E+3"), so an exponent in the
    # input is expanded: 1e100000 turns a 400-byte record into a 100 kB event (and 1e999999999
    # into a gigabyte).  Input that large must be refused at the door, with its path.
    rec = record(_with("assets.0.amount", amount))
    assert len(rec.value) < 1_000
    outcome = ingest_record(rec, {}, NOW, topic=INGESTED)
    assert all(len(o.value) <= MAX_RECORD_BYTES for o in outcome.outputs)
    _, payload, _ = rejection(outcome)
    assert {e.path for e in payload.errors} - {"assets"} == {"assets.0.amount"}


@pytest.mark.parametrize("amount", ["0E-100000", "0e+100000", "1.5" + "0" * 900])
def test_zeros_are_not_expanded_either(amount: str) -> None:
    # "0E-100000" has no digit the bounds count, yet in plain notation it is 100 000 zeros;
    # trailing zeros are dropped past the wire's 36 decimal places, which is exact.
    outcome = ingest_record(record(_with("assets.0.amount", amount)), {}, NOW, topic=INGESTED)
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


# ----------------------------------------------------------------------------- bounded output


def produced_bytes(output: Output) -> int:
    return len(output.key) + len(output.value) + sum(len(k) + len(v) for k, v in output.headers)


def test_thirty_thousand_field_errors_make_a_bounded_rejection() -> None:
    # 60 KB of input, one error per list item: the rejection used to list all 30,000
    # (2.57 MB, over the producer's limit, and the partition wedged).
    data = body()
    data["constraints"]["allowedVenues"] = [0] * 30_000
    rec = record(data)
    assert 60_000 < len(rec.value) <= MAX_RECORD_BYTES
    outcome = ingest_record(rec, {}, NOW, topic=INGESTED)
    event, payload, dl = rejection(outcome)
    assert len(payload.errors) == MAX_FIELD_ERRORS
    assert payload.errors[0].path == "constraints.allowedVenues.0"
    assert payload.reason.endswith("(+29997 more)")  # 3 named in the summary
    assert dict(dl.headers)["sep-errors-omitted"] == str(30_000 - MAX_FIELD_ERRORS).encode()
    unbounded = len(orjson.dumps([e.model_dump() for e in payload.errors])) * 1_500
    for output in outcome.outputs:
        assert produced_bytes(output) < MAX_PRODUCED_RECORD_BYTES
        assert produced_bytes(output) < unbounded // 20
    assert_dead_letter(rec, event, payload, dl)


def test_a_megabyte_record_is_rejected_with_a_prefix_dead_lettered() -> None:
    rec = record(b"{" + b" " * 999_999)
    outcome = ingest_record(rec, {}, NOW, topic=INGESTED)
    event, payload, dl = rejection(outcome)
    assert payload.reason == "record too large"
    assert len(dl.value) == DEAD_LETTER_PREFIX_BYTES
    assert dict(dl.headers)["sep-truncated"] == b"true"
    assert all(produced_bytes(o) < MAX_PRODUCED_RECORD_BYTES for o in outcome.outputs)
    assert_dead_letter(rec, event, payload, dl)


def test_long_ids_and_messages_of_an_invalid_record_are_cut() -> None:
    rec = record(body(strategyId="s" * 20_000, clientIntentId="c" * 20_000, **{"x" * 20_000: 1}))
    _, payload, _ = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
    assert len(payload.strategy_id or "") <= 200
    assert len(payload.client_intent_id or "") <= 200
    assert all(len(e.path) <= MAX_FIELD_ERROR_CHARS for e in payload.errors)
    assert len(payload.reason) <= MAX_REASON_CHARS


# ----------------------------------------------------------------------------- no value


def test_a_record_without_value_is_rejected_with_a_reason() -> None:
    # A tombstone: the runtime hands its None value over as b"".
    rec = record(b"", partition=2, offset=8)
    event, payload, dl = rejection(ingest_record(rec, {}, NOW, topic=INGESTED))
    assert payload.reason == "record has no value"
    assert [e.path for e in payload.errors] == [""]
    assert "null or empty" in payload.errors[0].message
    assert_dead_letter(rec, event, payload, dl)


# ----------------------------------------------------------------------------- timestamps

TOLERANCE = 60_000


async def run_stage(
    records: list[Record],
    *,
    now: int = NOW,
    settings: Settings | None = None,
    topology: Topology = TOPOLOGY,
) -> list[Event]:
    settings = settings or Settings(clock_skew_tolerance_ms=TOLERANCE)
    stage = build(
        StageContext(
            topology, settings, clock=lambda: now, dedupe=MemoryDedupeStore(3600, clock=lambda: now)
        )
    )
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process(records, emit)
    return [decode_event(o.value) for o in sent if o.topic in (*LANE_TOPICS, INGESTED)]


@pytest.mark.parametrize(
    ("skew", "accepted"),
    [
        (-TOLERANCE - 1, False),
        (-TOLERANCE, True),
        (0, True),
        (TOLERANCE, True),
        (TOLERANCE + 1, False),
    ],
)
async def test_a_record_timestamp_beyond_the_tolerance_is_rejected(
    skew: int, accepted: bool
) -> None:
    [event] = await run_stage([record(body(), ts=NOW + skew)])
    if accepted:
        assert event.topic == "intent.submitted"
        return
    payload = event.parse_payload()
    assert isinstance(payload, IntentRejected)
    assert payload.reason == "record timestamp too far from the receiving clock"
    [error] = payload.errors
    assert error.path == "<record>.timestamp"
    assert str(NOW + skew) in error.message  # the record time,
    assert str(NOW) in error.message  # the receive time,
    assert f"tolerance is {TOLERANCE} ms" in error.message  # and the bound
    assert ("ahead of" if skew > 0 else "behind") in error.message
    # Its ids sort when it arrived, not when its producer's clock said.
    assert ulid_timestamp_ms(event.correlation_id.removeprefix("intent-")) == NOW


async def test_a_record_ten_years_ahead_never_becomes_an_intent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEP_CLOCK_SKEW_TOLERANCE_MS", str(TOLERANCE))
    ten_years = 10 * 365 * 24 * 3600 * 1000
    events = await run_stage(
        [record(body(), ts=NOW + ten_years), record(body(clientIntentId="c-2"), ts=-1, offset=1)],
        settings=Settings(),
    )
    assert [e.topic for e in events] == ["intent.rejected", "intent.rejected"]
    for event in events:
        assert ulid_timestamp_ms(event.correlation_id.removeprefix("intent-")) == NOW
        assert ulid_timestamp_ms(event.event_id) == NOW


def test_the_default_tolerance_is_five_minutes() -> None:
    assert ingest_record(record(body(), ts=NOW - 300_000), {}, NOW, topic=INGESTED).rejected is None
    assert (
        ingest_record(record(body(), ts=NOW - 300_001), {}, NOW, topic=INGESTED).rejected
        is not None
    )


# ----------------------------------------------------------------------------- the stage


async def test_a_duplicate_is_logged_with_where_it_came_from(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="pipeline.stages.ingest"):
        [first] = await run_stage(
            [
                record(body(), partition=1, offset=5),
                record(body(), partition=6, offset=9, ts=T0 + 7),
            ]
        )
    [line] = [r for r in caplog.records if r.getMessage() == "duplicate intent dropped"]
    assert (line.topic, line.partition, line.offset, line.key) == (  # type: ignore[attr-defined]
        "sep.intents.submitted",
        6,
        9,
        "dca",
    )
    assert line.dedupe_key == dedupe_key("dca", "c-1")  # type: ignore[attr-defined]
    assert line.original_intent_id == first.correlation_id  # type: ignore[attr-defined]


async def test_with_lanes_each_intent_goes_to_the_topic_of_the_lane_its_score_gives() -> None:
    assert LANED.lanes is not None  # topology.yaml declares lanes (off by default)
    urgent = body(
        clientIntentId="u",
        constraints={
            **body()["constraints"],
            "timeWindowMs": 5_000,
            "executionStyle": "AGGRESSIVE",
        },
    )
    routine = body(
        clientIntentId="r",
        constraints={
            **body()["constraints"],
            "timeWindowMs": 3_600_000,
            "executionStyle": "PASSIVE",
        },
    )
    stage = build(
        StageContext(
            LANED,
            Settings(clock_skew_tolerance_ms=TOLERANCE),
            clock=lambda: NOW,
            dedupe=MemoryDedupeStore(3600, clock=lambda: NOW),
        )
    )
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process([record(urgent), record(routine, offset=1)], emit)
    lanes = [(o.topic, decode_event(o.value).payload["lane"]) for o in sent]
    assert lanes == [
        (LANED.lanes.topic_of("fast"), "fast"),
        (LANED.lanes.topic_of("bulk"), "bulk"),
    ]


def test_redis_trouble_is_retried_rather_than_dead_lettered() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from pipeline.stages.ingest import IngestStage

    assert IngestStage.retry_forever(RedisConnectionError("away"))
    assert not IngestStage.retry_forever(ValueError("a bug"))


async def test_the_same_submission_on_two_partitions_is_one_intent(
    kafka_bootstrap: str, redis_url: str
) -> None:
    # kcat (CRC32) and POST /intents (murmur2) put one strategy on different partitions: the
    # same submission must still make one intent, even handled by two workers.
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from pipeline.client import INPUT_TOPIC
    from pipeline.runtime.topics import ensure_topics

    await ensure_topics(kafka_bootstrap, TOPOLOGY)
    run = uuid.uuid4().hex[:8]
    raw = orjson.dumps(body(strategyId=f"x-{run}", clientIntentId="same"))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        # Another millisecond each, or the two would be one intent id (a redelivery).
        stamp = now_ms()
        sent = [
            await producer.send_and_wait(
                INPUT_TOPIC, raw, key=run.encode(), partition=p, timestamp_ms=stamp + i
            )
            for i, p in enumerate((1, 6))
        ]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        records = []
        for meta in sent:
            tp = TopicPartition(INPUT_TOPIC, meta.partition)
            consumer.assign([tp])
            consumer.seek(tp, meta.offset)
            got = (await consumer.getmany(tp, timeout_ms=10_000, max_records=1))[tp][0]
            records.append(
                Record(
                    got.topic, got.partition, got.offset, got.timestamp, got.key, got.value or b""
                )
            )
    finally:
        await consumer.stop()
    assert {r.partition for r in records} == {1, 6}

    settings = Settings(redis=redis_url, redis_prefix=f"t-{run}:")
    workers = [build(StageContext(TOPOLOGY, settings)) for _ in records]  # no store: Redis
    sent_events: list[Event] = []

    async def emit(output: Output) -> None:
        sent_events.append(decode_event(output.value))

    for worker in workers:
        await worker.start()
    try:
        for worker, rec in zip(workers, records, strict=True):
            await worker.process([rec], emit)
        # The first record redelivered to the other worker is not a duplicate of itself.
        await workers[1].process([records[0]], emit)
    finally:
        for worker in workers:
            await worker.stop()
    assert [e.topic for e in sent_events] == ["intent.submitted", "intent.submitted"]
    assert sent_events[0].event_id == sent_events[1].event_id
    assert [w.duplicates for w in workers] == [0, 1]


async def test_with_lanes_an_intent_validate_will_reject_is_still_queued_not_dead_lettered() -> (
    None
):
    # A negative amount passes the schema (validate refuses it, with the reason): ingest's
    # scoring must not fail on it, nor on the good intents of its batch.
    negative = body(clientIntentId="neg")
    negative["assets"][0]["amount"] = "-5"
    events = await run_stage([record(body()), record(negative, offset=1)], topology=LANED)
    assert [e.topic for e in events] == ["intent.submitted", "intent.submitted"]
    assert all(e.payload["lane"] for e in events)


# ----------------------------------------------------------------------------- input lanes

SUBMIT_FAST, SUBMIT_BULK = "sep.intents.submitted.fast", "sep.intents.submitted.bulk"


def on_topic(rec: Record, topic: str, partition: int | None = None) -> Record:
    return Record(
        topic,
        rec.partition if partition is None else partition,
        rec.offset,
        rec.timestamp_ms,
        rec.key,
        rec.value,
    )


async def test_one_submission_in_two_input_lanes_is_one_intent_whichever_comes_first() -> None:
    # A producer labelled one submission twice, differently (its retry was scored in another
    # lane), or a second copy came through the plain topic: the lanes reorder what ingest
    # sees (the later copy, fast, is taken first), yet the key is claimed once, by whichever
    # copy comes first, and a redelivery of either changes nothing.
    assert LANED.lanes is not None
    assert LANED.lanes.submit_topics[0] == SUBMIT_FAST
    early = on_topic(record(body(), offset=7), SUBMIT_BULK)
    late = on_topic(record(body(), offset=3, ts=T0 + 40), SUBMIT_FAST, partition=5)
    plain = record(body(), offset=9, ts=T0 + 80)
    store = MemoryDedupeStore(3600, clock=lambda: NOW)
    stage = build(
        StageContext(
            LANED, Settings(clock_skew_tolerance_ms=TOLERANCE), clock=lambda: NOW, dedupe=store
        )
    )
    sent: list[Event] = []

    async def emit(output: Output) -> None:
        if output.topic in LANE_TOPICS:
            sent.append(decode_event(output.value))

    await stage.process([late, early], emit)  # one pass, fast lane first
    await stage.process([plain], emit)  # an unlabelled copy, later
    await stage.process([early, late], emit)  # both redelivered, in the other order
    assert [e.topic for e in sent] == ["intent.submitted", "intent.submitted"]
    assert sent[0].event_id == sent[1].event_id  # the winner, emitted again on redelivery
    winner = predicted_intent_id(T0 + 40, "dca", "c-1", partition=5)  # the fast copy's
    assert sent[0].correlation_id == winner == store.owner(dedupe_key("dca", "c-1"))
    assert stage.duplicates == 3  # early twice, plain once


async def test_copies_in_two_input_lanes_handled_by_two_workers_are_one_intent(
    redis_url: str,
) -> None:
    # With Redis, as in production: the fast copy on one worker, the bulk copy on another
    # (partitions of different producers' partitioners), each redelivered to the other.
    run = uuid.uuid4().hex[:8]
    raw = body(strategyId=f"x-{run}", clientIntentId="same")
    fast = on_topic(record(raw, offset=1, ts=T0 + 1), SUBMIT_FAST, partition=2)
    bulk = on_topic(record(raw, offset=4), SUBMIT_BULK, partition=6)
    settings = Settings(
        redis=redis_url, redis_prefix=f"t-{run}:", clock_skew_tolerance_ms=TOLERANCE
    )
    workers = [build(StageContext(LANED, settings, clock=lambda: NOW)) for _ in range(2)]
    sent: list[Event] = []

    async def emit(output: Output) -> None:
        if output.topic in LANE_TOPICS:
            sent.append(decode_event(output.value))

    for worker in workers:
        await worker.start()
    try:
        await workers[0].process([fast], emit)
        await workers[1].process([bulk], emit)
        await workers[1].process([fast], emit)  # redelivered after a rebalance
        await workers[0].process([bulk], emit)
    finally:
        for worker in workers:
            await worker.stop()
    winner = predicted_intent_id(T0 + 1, f"x-{run}", "same", partition=2)  # the fast copy's
    assert [e.correlation_id for e in sent] == [winner] * 2
    assert [w.duplicates for w in workers] == [1, 1]
