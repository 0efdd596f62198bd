"""Prioritise: a score a person can check by hand -> priority 1..10 -> lane; batches by priority."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.models.events import Event, IntentPrioritised
from pipeline.models.intent import Intent
from pipeline.priority.scoring import in_lane
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.ingest import ingest_record
from pipeline.stages.prioritise import (
    build,
    prioritise_event,
    score_intent,
    urgency,
)
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from pipeline.topology.models import Topology

TOPOLOGY = load_topology()
NO_LANES = TOPOLOGY.model_copy(update={"lanes": None})
INGESTED = TOPOLOGY.stage("ingest").events_topic
OUTPUT_TOPIC = TOPOLOGY.stage("prioritise").events_topic
T0 = 1_700_000_000_000
HOUR = 3_600_000


def intent(
    window: int = 300_000, style: str = "ADAPTIVE", amount: str = "0.01", subject: str = "WETH"
) -> Intent:
    data = submission(
        TOPOLOGY,
        "DISPOSE",
        subject,
        "USDC" if subject != "USDC" else "WETH",
        amount,
        time_window_ms=window,
        style=style,
    )
    return Intent.model_validate({**data, "id": "intent-x", "createdAtMs": T0})


def accepted_events(specs: list[dict[str, Any]]) -> list[tuple[Event, Event]]:
    """(risk.approved, intent.accepted) for each spec, through the real ingest and validate."""
    out = []
    for offset, spec in enumerate(specs):
        data = submission(
            TOPOLOGY,
            "DISPOSE",
            "WETH",
            "USDC",
            spec.get("amount", "0.01"),
            time_window_ms=spec["window"],
            style=spec["style"],
            strategy_id="s",
            client_intent_id=f"c-{offset}",
        )
        rec = Record("sep.intents.submitted", 0, offset, T0, b"s", orjson.dumps(data))
        sub = decode_event(ingest_record(rec, MemoryTable(), T0, topic=INGESTED).outputs[0].value)
        approved, accepted = (
            decode_event(o.value) for o in validate_event(sub, TOPOLOGY, ("sim",), T0)
        )
        assert accepted.topic == "intent.accepted"
        out.append((approved, accepted))
    return out


# ----------------------------------------------------------------------------- urgency


def test_urgency_ends() -> None:
    assert urgency(10_000) == 1
    assert urgency(1_000) == 1  # shorter than 10 s is no more urgent than 10 s
    assert urgency(HOUR) == 0
    assert urgency(24 * HOUR) == 0


def test_urgency_is_linear_in_between() -> None:
    midpoint = (10_000 + HOUR) // 2  # 1_805_000
    assert urgency(midpoint) == Decimal("0.5")


def test_urgency_is_monotone_in_the_window() -> None:
    windows = [1_000, 10_000, 10_001, 60_000, 300_000, 1_000_000, HOUR - 1, HOUR, 10 * HOUR]
    values = [urgency(w) for w in windows]
    assert values == sorted(values, reverse=True)
    assert all(0 <= v <= 1 for v in values)


# ----------------------------------------------------------------------------- score


def test_score_by_hand() -> None:
    # urgency 0.5 * 0.6 + ADAPTIVE 0.5 * 0.25 + size (0.01 WETH * 3000 / 1e6 = 0.00003) * 0.15
    # = 0.3 + 0.125 + 0.0000045 = 0.4250045, kept to 4 places -> 0.4250 -> priority 5.
    result = score_intent(intent(window=1_805_000, style="ADAPTIVE"), TOPOLOGY)
    assert result.score == Decimal("0.4250")
    assert result.priority == 5
    assert result.lane == "normal"


def test_most_and_least_urgent() -> None:
    top = score_intent(intent(window=1_000, style="AGGRESSIVE", amount="400"), TOPOLOGY)
    assert (top.score, top.priority, top.lane) == (Decimal("1.0000"), 10, "fast")
    bottom = score_intent(intent(window=HOUR, style="PASSIVE", amount="0.0001"), TOPOLOGY)
    assert (bottom.priority, bottom.lane) == (1, "bulk")


def test_size_is_capped_at_the_risk_limit() -> None:
    at_limit = score_intent(intent(amount="333.34"), TOPOLOGY)  # just over 1,000,000 USDC
    far_over = score_intent(intent(amount="100000"), TOPOLOGY)
    assert at_limit.score == far_over.score


@pytest.mark.parametrize(
    ("window", "style", "priority", "lane"),
    [
        (10_000, "ADAPTIVE", 8, "fast"),  # 0.6 + 0.125 = 0.725
        (10_000, "PASSIVE", 7, "normal"),  # 0.6
        (1_805_000, "PASSIVE", 4, "normal"),  # 0.3
        (HOUR, "AGGRESSIVE", 3, "bulk"),  # 0.25
    ],
)
def test_lane_boundaries(window: int, style: str, priority: int, lane: str) -> None:
    result = score_intent(intent(window=window, style=style), NO_LANES)
    assert (result.priority, result.lane) == (priority, lane)


@pytest.mark.parametrize("window", [1_000, 60_000, 600_000, HOUR])
@pytest.mark.parametrize("amount", ["0.001", "10", "1000"])
def test_aggressive_never_ranks_below_adaptive_or_passive(window: int, amount: str) -> None:
    scores = {
        style: score_intent(intent(window=window, style=style, amount=amount), TOPOLOGY)
        for style in ("AGGRESSIVE", "ADAPTIVE", "PASSIVE")
    }
    assert scores["AGGRESSIVE"].score > scores["ADAPTIVE"].score > scores["PASSIVE"].score
    assert (
        scores["AGGRESSIVE"].priority >= scores["ADAPTIVE"].priority >= scores["PASSIVE"].priority
    )


@pytest.mark.parametrize("style", ["AGGRESSIVE", "ADAPTIVE", "PASSIVE"])
def test_priority_is_monotone_in_the_window(style: str) -> None:
    windows = [1_000, 10_000, 30_000, 120_000, 300_000, 900_000, 2_000_000, HOUR, 24 * HOUR]
    priorities = [score_intent(intent(window=w, style=style), TOPOLOGY).priority for w in windows]
    assert priorities == sorted(priorities, reverse=True)
    assert all(1 <= p <= 10 for p in priorities)


@pytest.mark.parametrize("topology", [NO_LANES, TOPOLOGY], ids=["default lanes", "lanes:"])
def test_priority_and_lane_agree_everywhere(topology: Topology) -> None:
    lanes = {"fast": range(8, 11), "normal": range(4, 8), "bulk": range(1, 4)}
    if topology.lanes is not None:
        lanes = {
            lane.name: range(lane.priorities[0], lane.priorities[1] + 1)
            for lane in topology.lanes.lanes
        }
    for window in range(1_000, HOUR + 1, 97_000):
        for style in ("AGGRESSIVE", "ADAPTIVE", "PASSIVE"):
            for amount in ("0.001", "50", "400"):
                result = score_intent(intent(window=window, style=style, amount=amount), topology)
                assert 0 <= result.score <= 1
                assert result.priority in lanes[result.lane]


def test_the_lane_ingest_chose_is_kept_with_the_priority_clamped_into_it() -> None:
    assert TOPOLOGY.lanes is not None
    urgent = score_intent(intent(window=10_000, style="AGGRESSIVE"), TOPOLOGY)
    assert urgent.lane == "fast"
    kept = in_lane(urgent, "bulk", TOPOLOGY)  # it waited in bulk: it is reported in bulk
    assert (kept.lane, kept.priority, kept.score) == ("bulk", 3, urgent.score)
    assert in_lane(urgent, "fast", TOPOLOGY) == urgent
    assert in_lane(urgent, None, TOPOLOGY) == urgent  # no lane said: scored afresh
    assert in_lane(urgent, "gone", TOPOLOGY) == urgent


def test_unpriced_subject_counts_as_size_zero() -> None:
    prices = {k: v for k, v in TOPOLOGY.risk.reference_prices.items() if k != "WETH"}
    unpriced = TOPOLOGY.model_copy(
        update={"risk": TOPOLOGY.risk.model_copy(update={"reference_prices": prices})}
    )
    big = intent(window=HOUR, style="PASSIVE", amount="300")
    assert score_intent(big, unpriced).score == 0
    assert score_intent(big, TOPOLOGY).score > 0


# ----------------------------------------------------------------------------- events


def test_prioritised_event_follows_accepted() -> None:
    ((_, accepted),) = accepted_events([{"window": 10_000, "style": "ADAPTIVE"}])
    priority, output = prioritise_event(accepted, TOPOLOGY, T0 + 5)
    event = decode_event(output.value)
    assert output.topic == OUTPUT_TOPIC
    assert output.key == accepted.correlation_id.encode()
    assert (event.topic, event.seq) == ("intent.prioritised", accepted.seq + 1)
    assert event.causation_id == accepted.event_id
    assert event.correlation_id == accepted.correlation_id
    payload = event.parse_payload()
    assert isinstance(payload, IntentPrioritised)
    assert (payload.priority, payload.lane) == (priority, "fast") == (8, "fast")
    assert event.payload["score"] == "0.7250"  # a string on the wire, not a float
    assert payload.intent.to_wire() == accepted.payload["intent"]


def test_prioritised_event_id_is_stable_on_reprocessing() -> None:
    ((_, accepted),) = accepted_events([{"window": 60_000, "style": "PASSIVE"}])
    first = decode_event(prioritise_event(accepted, TOPOLOGY, T0)[1].value)
    again = decode_event(prioritise_event(accepted, TOPOLOGY, T0 + 86_400_000)[1].value)
    assert first.event_id == again.event_id


async def test_batch_goes_out_highest_priority_first_stable_for_ties() -> None:
    specs = [
        {"window": HOUR, "style": "PASSIVE"},  # 1
        {"window": 10_000, "style": "AGGRESSIVE"},  # 9
        {"window": 300_000, "style": "ADAPTIVE"},  # middle
        {"window": HOUR, "style": "PASSIVE"},  # 1, after the first one
        {"window": 10_000, "style": "AGGRESSIVE"},  # 9, after the other 9
    ]
    pairs = accepted_events(specs)
    records = []
    for approved, accepted in pairs:  # risk.approved is in the batch too and is ignored
        for e in (approved, accepted):
            records.append(
                Record("sep.intents.validated", 0, len(records), T0, None, encode_event(e))
            )
    stage = build(StageContext(TOPOLOGY, Settings(), clock=lambda: T0))
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process(records, emit)
    out = [decode_event(o.value) for o in sent]
    assert [e.topic for e in out] == ["intent.prioritised"] * 5
    priorities = [e.payload["priority"] for e in out]
    assert priorities == sorted(priorities, reverse=True)
    ids = [accepted.correlation_id for _, accepted in pairs]
    assert [e.correlation_id for e in out] == [ids[1], ids[4], ids[2], ids[0], ids[3]]


async def test_batch_without_accepted_events_emits_nothing() -> None:
    ((approved, _),) = accepted_events([{"window": HOUR, "style": "PASSIVE"}])
    stage = build(StageContext(TOPOLOGY, Settings(), clock=lambda: T0))
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process([Record("t", 0, 0, T0, None, encode_event(approved))], emit)
    assert sent == []


# ----------------------------------------------------------------------------- the scorers


def with_scorer(scorer: str, min_time_left_ms: int = 250) -> Any:
    priority = TOPOLOGY.priority.model_copy(
        update={"scorer": scorer, "min_time_left_ms": min_time_left_ms}
    )
    return TOPOLOGY.model_copy(update={"priority": priority})


async def run_stage(topology: Any, specs: list[dict[str, Any]], now: int) -> list[Event]:
    records = [
        Record("sep.intents.validated", 0, i, T0, None, encode_event(accepted))
        for i, (_, accepted) in enumerate(accepted_events(specs))
    ]
    stage = build(StageContext(topology, Settings(), clock=lambda: now))
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process(records, emit)
    return [decode_event(o.value) for o in sent]


async def test_the_model_scores_a_batch_and_says_so() -> None:
    out = await run_stage(
        with_scorer("model"),
        [{"window": HOUR, "style": "PASSIVE"}, {"window": 10_000, "style": "AGGRESSIVE"}],
        T0 + 1,
    )
    assert [e.topic for e in out] == ["intent.prioritised"] * 2
    urgent, relaxed = (IntentPrioritised.model_validate(e.payload) for e in out)
    assert (urgent.scorer, urgent.scorer_version) == ("model", "priority-1")
    assert urgent.intent.constraints.time_window_ms == 10_000  # the urgent one went first
    assert urgent.priority >= 7
    assert relaxed.priority <= 3


async def test_the_rule_scores_when_the_topology_says_so() -> None:
    (out,) = await run_stage(with_scorer("rule"), [{"window": 10_000, "style": "ADAPTIVE"}], T0)
    payload = IntentPrioritised.model_validate(out.payload)
    assert (payload.scorer, payload.scorer_version, payload.priority) == ("rule", "rule-1", 8)


@pytest.mark.parametrize("scorer", ["model", "rule"])
async def test_an_intent_whose_window_cannot_hold_planning_is_expired_there(scorer: str) -> None:
    specs = [{"window": 10_000, "style": "AGGRESSIVE"}, {"window": HOUR, "style": "PASSIVE"}]
    # 9.9 s later: the first has 100 ms of its 10 s left, under the 250 ms it needs.
    out = await run_stage(with_scorer(scorer), specs, T0 + 9_900)
    assert [e.topic for e in out] == ["intent.expired", "intent.prioritised"]
    expired = out[0].payload
    assert expired["stage"] == "prioritise"
    assert expired["deadlineMs"] == T0 + 10_000
    assert "100 ms of the window left" in expired["reason"]
    # Switched off, the same intent is prioritised (and left to expire downstream).
    out = await run_stage(with_scorer(scorer, min_time_left_ms=0), specs, T0 + 9_900)
    assert [e.topic for e in out] == ["intent.prioritised"] * 2


@pytest.mark.parametrize("scorer", ["model", "rule"])
async def test_a_redelivered_intent_gets_its_first_answer_byte_for_byte(scorer: str) -> None:
    """After a rebalance the same intent.accepted comes again, past its deadline: the stage
    re-emits what it said the first time, not an intent.expired that contradicts it."""
    ((_, accepted),) = accepted_events([{"window": 10_000, "style": "AGGRESSIVE"}])
    record = Record("sep.intents.validated", 0, 0, T0, None, encode_event(accepted))
    clock = [T0 + 1]
    stage = build(StageContext(with_scorer(scorer), Settings(), clock=lambda: clock[0]))
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process([record], emit)
    clock[0] = T0 + 60_000  # long past the 10 s window
    await stage.process([record], emit)
    assert len(sent) == 2
    assert sent[0].value == sent[1].value
    assert decode_event(sent[1].value).topic == "intent.prioritised"
