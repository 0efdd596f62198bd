"""Validate: semantic errors become intent.rejected (+ dead letter); risk limits say no by rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.models.events import (
    Event,
    FieldError,
    IntentAccepted,
    IntentRejected,
    RiskApproved,
    RiskRejected,
)
from pipeline.models.intent import Intent
from pipeline.pricing import notional
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.ingest import ingest_record
from pipeline.stages.rejections import DEADLETTER_TOPIC
from pipeline.stages.validate import (
    build,
    risk_breaches,
    semantic_errors,
    spend_estimate,
    validate_event,
)
from pipeline.topology import load_topology

TOPOLOGY = load_topology()
INGESTED = TOPOLOGY.stage("validate").inputs[0]
"""A topic validate reads (the first priority lane's, with ``lanes:`` in the topology)."""
INGESTED = TOPOLOGY.stage("ingest").events_topic
OUTPUT_TOPIC = TOPOLOGY.stage("validate").events_topic
VENUES = ("sim",)
T0 = 1_700_000_000_000
NOW = T0 + 1_000
ARB = TOPOLOGY.asset("ARB").to_wire()


def body(
    kind: str = "DISPOSE",
    subject: str = "WETH",
    counter: str = "USDC",
    amount: str = "0.5",
    **constraints: Any,
) -> dict[str, Any]:
    data = submission(
        TOPOLOGY, kind, subject, counter, amount, strategy_id="dca", client_intent_id="c-1"
    )
    data["constraints"].update(constraints)
    return data


def submitted(data: dict[str, Any], offset: int = 0) -> Event:
    """The intent.submitted event ingest makes of ``data`` (so ids are the real ones)."""
    rec = Record("sep.intents.submitted", 0, offset, T0, b"dca", orjson.dumps(data))
    outcome = ingest_record(rec, MemoryTable(), T0 + 10, topic=INGESTED)
    event = decode_event(outcome.outputs[0].value)
    assert event.topic == "intent.submitted", event.payload
    return event


def intent_of(data: dict[str, Any]) -> Intent:
    return Intent.model_validate(submitted(data).payload["intent"])


def events(outputs: list[Output]) -> list[Event]:
    return [decode_event(o.value) for o in outputs if o.topic == OUTPUT_TOPIC]


def rejected(data: dict[str, Any]) -> tuple[Event, Event, IntentRejected, Output]:
    source = submitted(data)
    outputs = validate_event(source, TOPOLOGY, VENUES, NOW)
    assert [o.topic for o in outputs] == [OUTPUT_TOPIC, DEADLETTER_TOPIC]
    (event,) = events(outputs)
    assert event.topic == "intent.rejected"
    payload = event.parse_payload()
    assert isinstance(payload, IntentRejected)
    return source, event, payload, outputs[1]


# ----------------------------------------------------------------------------- valid


def test_valid_intent_is_approved_then_accepted() -> None:
    source = submitted(body())
    outputs = validate_event(source, TOPOLOGY, VENUES, NOW)
    approved, accepted = events(outputs)
    assert [o.topic for o in outputs] == [OUTPUT_TOPIC, OUTPUT_TOPIC]
    assert (approved.topic, approved.seq) == ("risk.approved", 2)
    assert (accepted.topic, accepted.seq) == ("intent.accepted", 3)
    # Both are caused by the intent.submitted event this stage handled.
    assert approved.causation_id == source.event_id
    assert accepted.causation_id == source.event_id
    assert {approved.correlation_id, accepted.correlation_id} == {source.correlation_id}
    assert all(o.key == source.correlation_id.encode() for o in outputs)
    assert len({source.event_id, approved.event_id, accepted.event_id}) == 3


def test_approval_states_the_checks_and_the_notional() -> None:
    source = submitted(body(amount="0.5"))
    approved = events(validate_event(source, TOPOLOGY, VENUES, NOW))[0].parse_payload()
    assert isinstance(approved, RiskApproved)
    assert set(approved.checks) == {"max_notional", "max_slippage"}
    assert approved.notional == Decimal("1500")  # 0.5 WETH at the reference 3000 USDC


def test_accepted_carries_the_intent_unchanged() -> None:
    source = submitted(body())
    accepted = events(validate_event(source, TOPOLOGY, VENUES, NOW))[1].parse_payload()
    assert isinstance(accepted, IntentAccepted)
    assert accepted.intent.to_wire() == source.payload["intent"]


def test_outputs_are_identical_when_reprocessed() -> None:
    source = submitted(body())
    first = [decode_event(o.value).event_id for o in validate_event(source, TOPOLOGY, VENUES, NOW)]
    again = [
        decode_event(o.value).event_id
        for o in validate_event(source, TOPOLOGY, VENUES, NOW + 99_999)
    ]
    assert first == again


@pytest.mark.parametrize("window", [1_000, 86_400_000])
def test_window_bounds_are_inclusive(window: int) -> None:
    assert semantic_errors(intent_of(body(timeWindowMs=window)), TOPOLOGY, VENUES) == []


def test_allowed_known_venue_is_fine() -> None:
    assert semantic_errors(intent_of(body(allowedVenues=["sim"])), TOPOLOGY, VENUES) == []


# ----------------------------------------------------------------------------- wrong input


def _swap_asset(data: dict[str, Any], index: int, asset: dict[str, Any]) -> dict[str, Any]:
    data["assets"][index]["asset"] = asset
    return data


UNKNOWN = {"symbol": "FOO", "address": "0x" + "f0" * 20, "decimals": 18, "chainId": 31337}


@pytest.mark.parametrize(
    ("data", "path", "message_part"),
    [
        (_swap_asset(body(), 0, UNKNOWN), "assets.0.asset.symbol", 'unknown asset "FOO"'),
        (_swap_asset(body(), 1, UNKNOWN), "assets.1.asset.symbol", 'unknown asset "FOO"'),
        (
            _swap_asset(body(), 0, {**TOPOLOGY.asset("WETH").to_wire(), "decimals": 6}),
            "assets.0.asset",
            "registered as",
        ),
        (
            _swap_asset(
                body(), 1, {**TOPOLOGY.asset("USDC").to_wire(), "address": "0x" + "99" * 20}
            ),
            "assets.1.asset",
            "registered as",
        ),
        (body(amount="0"), "assets.0.amount", "greater than 0"),
        (body(amount="-1"), "assets.0.amount", "greater than 0"),
        (body(timeWindowMs=999), "constraints.timeWindowMs", "between 1000 and 86400000"),
        (body(timeWindowMs=86_400_001), "constraints.timeWindowMs", "between"),
        (
            body(allowedVenues=["uniswap"]),
            "constraints.allowedVenues.0",
            'unknown venue "uniswap"; known: sim',
        ),
        (body(allowedVenues=["sim", "binance"]), "constraints.allowedVenues.1", '"binance"'),
        (
            body(allowedVenues=[]),
            "constraints.allowedVenues",
            "lists no venue: omit it to allow every venue, or name at least one of: sim",
        ),
        (body(limitPrice="3000"), "constraints.limitPrice", "not supported yet"),
    ],
)
def test_wrong_intent_is_rejected_with_its_path(
    data: dict[str, Any], path: str, message_part: str
) -> None:
    source, event, payload, dl = rejected(data)
    assert [e.path for e in payload.errors] == [path]
    assert message_part in payload.errors[0].message
    assert path in payload.reason
    # Envelope: the next seq after intent.submitted, caused by it, same intent.
    assert event.seq == 2
    assert event.causation_id == source.event_id
    assert event.correlation_id == source.correlation_id
    assert payload.strategy_id == "dca"
    assert payload.client_intent_id == "c-1"
    # Dead letter: key is the rejection's deadLetterKey; value is the intent as received.
    assert payload.dead_letter_key is not None
    assert dl.key == payload.dead_letter_key.encode()
    assert orjson.loads(dl.value) == source.payload["intent"]
    headers = dict(dl.headers)
    assert orjson.loads(headers["sep-errors"]) == [
        {"path": path, "message": payload.errors[0].message}
    ]
    assert headers["sep-correlation-id"] == source.correlation_id.encode()


def test_an_empty_venue_list_names_the_venues_to_choose_from() -> None:
    # Omitted means every venue; [] would reach the planner, which found no venue and blamed
    # "this amount".
    errors = semantic_errors(intent_of(body(allowedVenues=[])), TOPOLOGY, ("uniswap_v3", "sim"))
    assert errors == [
        FieldError(
            path="constraints.allowedVenues",
            message=(
                "lists no venue: omit it to allow every venue, or name at least one of: "
                "sim, uniswap_v3"
            ),
        )
    ]


def test_an_unknown_venue_is_named_as_json_not_as_a_python_list() -> None:
    (error,) = semantic_errors(
        intent_of(body(allowedVenues=["sim", "binance"])), TOPOLOGY, ("uniswap_v3", "sim")
    )
    assert error.message == 'unknown venue "binance"; known: sim, uniswap_v3'


def test_a_limit_price_is_refused_rather_than_ignored() -> None:
    # No stage reads it: accepted, the intent would trade at any price within maxSlippage.
    _, _, payload, _ = rejected(body(limitPrice="3000"))
    assert [e.path for e in payload.errors] == ["constraints.limitPrice"]
    assert "maxSlippage" in payload.errors[0].message


def test_assets_on_two_chains() -> None:
    data = _swap_asset(body(subject="ARB", amount="10"), 1, TOPOLOGY.asset("USDC").to_wire())
    data["assets"][0]["asset"] = ARB
    _, _, payload, _ = rejected(data)
    assert [e.path for e in payload.errors] == ["assets.1.asset.chainId"]
    assert "42161" in payload.errors[0].message
    assert "1" in payload.errors[0].message


def test_same_asset_twice() -> None:
    _, _, payload, _ = rejected(body(subject="USDC", counter="USDC", amount="5"))
    assert [e.path for e in payload.errors] == ["assets.1.asset.symbol"]
    assert "must differ" in payload.errors[0].message


def test_counter_asset_takes_no_amount() -> None:
    data = body()
    data["assets"][1]["amount"] = "3000"
    _, _, payload, _ = rejected(data)
    assert [e.path for e in payload.errors] == ["assets.1"]


def test_percentage_is_not_supported_yet() -> None:
    data = body()
    del data["assets"][0]["amount"]
    data["assets"][0]["percentage"] = "50"
    _, _, payload, _ = rejected(data)
    assert [e.path for e in payload.errors] == ["assets.0.percentage"]


def test_missing_subject_amount() -> None:
    data = body()
    del data["assets"][0]["amount"]
    _, _, payload, _ = rejected(data)
    assert [e.path for e in payload.errors] == ["assets.0.amount"]


def test_every_problem_is_reported_at_once() -> None:
    data = body(amount="-2", timeWindowMs=5, allowedVenues=["nope"])
    _, _, payload, _ = rejected(data)
    assert {e.path for e in payload.errors} == {
        "assets.0.amount",
        "constraints.timeWindowMs",
        "constraints.allowedVenues.0",
    }


def test_wrong_input_is_not_risk_checked() -> None:
    # A semantic error wins over a risk breach: the person must fix the request first.
    _, event, _, _ = rejected(body(amount="-1", maxSlippage="0.5"))
    assert event.topic == "intent.rejected"


# ----------------------------------------------------------------------------- risk


def risk_rejection(data: dict[str, Any]) -> tuple[Event, Event, RiskRejected]:
    source = submitted(data)
    outputs = validate_event(source, TOPOLOGY, VENUES, NOW)
    assert [o.topic for o in outputs] == [OUTPUT_TOPIC]  # a refusal is not dead-lettered
    (event,) = events(outputs)
    assert event.topic == "risk.rejected"
    payload = event.parse_payload()
    assert isinstance(payload, RiskRejected)
    return source, event, payload


def test_notional_above_the_limit() -> None:
    # 400 WETH at the reference price 3000 USDC = 1,200,000 USDC > the 1,000,000 limit.
    source, event, payload = risk_rejection(body(amount="400"))
    assert payload.rule == "max_notional"
    assert Decimal(payload.limit or "") == Decimal("1000000")
    assert Decimal(payload.actual or "") == Decimal("1200000")
    assert "1200000" in payload.message
    assert "1000000" in payload.message
    assert "USDC" in payload.message
    assert (event.seq, event.causation_id) == (2, source.event_id)


def test_notional_exactly_at_the_limit_is_allowed() -> None:
    # 1,000,000 / 3000 is not a whole amount of WETH; 1,000,000 DAI at 1 is.
    assert risk_breaches(intent_of(body(subject="DAI", amount="1000000")), TOPOLOGY) == []
    (breach,) = risk_breaches(intent_of(body(subject="DAI", amount="1000000.000001")), TOPOLOGY)
    assert breach.rule == "max_notional"


def test_notional_of_each_subject_uses_its_reference_price() -> None:
    assert notional(intent_of(body(subject="WBTC", amount="0.5")), TOPOLOGY) == Decimal("30000")
    assert notional(
        intent_of(body(kind="ACQUIRE", subject="USDC", counter="WETH", amount="250")), TOPOLOGY
    ) == Decimal("250")


def test_slippage_above_the_limit() -> None:
    _, _, payload = risk_rejection(body(maxSlippage="0.06"))
    assert payload.rule == "max_slippage"
    assert (Decimal(payload.limit or ""), Decimal(payload.actual or "")) == (
        Decimal("0.05"),
        Decimal("0.06"),
    )


def test_slippage_at_the_limit_is_allowed() -> None:
    assert risk_breaches(intent_of(body(maxSlippage="0.05")), TOPOLOGY) == []


def test_both_breaches_are_named_first_one_leads() -> None:
    _, _, payload = risk_rejection(body(amount="400", maxSlippage="0.06"))
    assert payload.rule == "max_notional"
    assert "max slippage" in payload.message
    assert "notional" in payload.message


def test_an_unpriced_asset_is_refused_not_waved_through() -> None:
    prices = {k: v for k, v in TOPOLOGY.risk.reference_prices.items() if k != "WBTC"}
    topology = TOPOLOGY.model_copy(
        update={"risk": TOPOLOGY.risk.model_copy(update={"reference_prices": prices})}
    )
    (breach,) = risk_breaches(intent_of(body(subject="WBTC", amount="0.01")), topology)
    assert breach.rule == "max_notional"
    assert breach.actual == "unknown"
    assert "WBTC" in breach.message


# ----------------------------------------------------------------------------- the stage


async def test_stage_handles_submitted_and_ignores_rejected() -> None:
    context = StageContext(TOPOLOGY, Settings(), clock=lambda: NOW)
    stage = build(context)
    bad_record = Record("sep.intents.submitted", 0, 9, T0, None, b"not json")
    rejected_event = decode_event(
        ingest_record(bad_record, MemoryTable(), T0, topic=INGESTED).outputs[0].value
    )
    assert rejected_event.topic == "intent.rejected"
    good = submitted(body())
    records = [
        Record(INGESTED, 0, i, T0, None, encode_event(e))
        for i, e in enumerate([rejected_event, good])
    ]
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process(records, emit)
    assert [decode_event(o.value).topic for o in sent] == ["risk.approved", "intent.accepted"]
    assert {decode_event(o.value).correlation_id for o in sent} == {good.correlation_id}


async def test_stage_knows_only_enabled_venues() -> None:
    data = TOPOLOGY.model_dump(by_alias=True)
    data["plugins"]["venues"]["sim"]["enabled"] = False
    topology = type(TOPOLOGY).model_validate(data)
    stage = build(StageContext(topology, Settings(), clock=lambda: NOW))
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    record = Record(INGESTED, 0, 0, T0, None, encode_event(submitted(body(allowedVenues=["sim"]))))
    await stage.process([record], emit)
    assert [o.topic for o in sent] == [OUTPUT_TOPIC, DEADLETTER_TOPIC]
    payload = decode_event(sent[0].value).parse_payload()
    assert isinstance(payload, IntentRejected)
    assert [e.path for e in payload.errors] == ["constraints.allowedVenues.0"]


def test_address_case_does_not_make_another_asset() -> None:
    # Ethereum addresses are case-insensitive (the mixed case is only a checksum), and
    # Asset.key - "identity used by the router and the risk engine" - case-folds them.
    # A producer that sends the lower-case address of a registered asset names that asset.
    data = body()
    weth = TOPOLOGY.asset("WETH").to_wire()
    data["assets"][0]["asset"] = {**weth, "address": str(weth["address"]).lower()}
    assert semantic_errors(intent_of(data), TOPOLOGY, VENUES) == []


@pytest.mark.parametrize(
    ("subject", "counter", "amount"),
    [
        ("USDC", "WETH", "0.0000001"),  # USDC has 6 decimals: this is 0 base units
        ("WBTC", "USDC", "0.000000009"),  # WBTC has 8
    ],
)
def test_amount_below_one_base_unit_is_wrong_input(subject: str, counter: str, amount: str) -> None:
    # It is > 0, but nothing can be traded: the router refuses a zero amount.  The person
    # who sent it should hear so from validate, with the path, not get a stuck pipeline.
    _, _, payload, _ = rejected(body(subject=subject, counter=counter, amount=amount))
    assert [e.path for e in payload.errors] == ["assets.0.amount"]
    smallest = TOPOLOGY.asset(subject).from_base_units(1)
    assert f"the smallest amount is {smallest:f}" in payload.errors[0].message
    # As the producer wrote it, not as Python prints a Decimal ("1E-7").
    assert payload.errors[0].message.startswith(f"{amount} is less than one base unit")


def test_address_case_does_not_hide_other_decimals() -> None:
    data = body()
    weth = TOPOLOGY.asset("WETH").to_wire()
    data["assets"][0]["asset"] = {**weth, "address": str(weth["address"]).lower(), "decimals": 6}
    errors = semantic_errors(intent_of(data), TOPOLOGY, VENUES)
    assert [(e.path, "registered as" in e.message) for e in errors] == [("assets.0.asset", True)]


# --- funding: can a venue's account pay for the intent? ----------------------------------


def test_dispose_spends_its_amount_and_acquire_its_priced_cost_plus_slippage() -> None:
    assert spend_estimate(intent_of(body("DISPOSE", "WETH", "USDC", "2")), TOPOLOGY) == (
        "WETH",
        Decimal("2"),
    )
    # 0.5 WETH at 3000 USDC, paying at most 1 % more: 1515 USDC
    acquire = intent_of(body("ACQUIRE", "WETH", "USDC", "0.5", maxSlippage="0.01"))
    assert spend_estimate(acquire, TOPOLOGY) == ("USDC", Decimal("1515.00"))


def test_an_intent_no_venue_can_fund_is_refused_with_the_numbers() -> None:
    event = submitted(body("DISPOSE", "WETH", "USDC", "2"))
    holdings = {"uniswap_v3": {"WETH": Decimal("1.25"), "USDC": Decimal(10**6)}}
    out = events(validate_event(event, TOPOLOGY, ("uniswap_v3",), NOW, holdings))
    assert [e.topic for e in out] == ["risk.rejected"]
    refusal = out[0].parse_payload()
    assert isinstance(refusal, RiskRejected)
    assert (refusal.rule, refusal.limit, refusal.actual) == ("funding", "1.25", "2")
    assert "needs about 2 WETH; uniswap_v3 holds 1.25" in refusal.message


def test_one_venue_that_can_fund_it_is_enough_and_the_check_is_stated() -> None:
    event = submitted(body("DISPOSE", "WETH", "USDC", "2"))
    holdings = {"poor": {"WETH": Decimal(1)}, "rich": {"WETH": Decimal(5)}}
    out = events(validate_event(event, TOPOLOGY, ("poor", "rich"), NOW, holdings))
    assert [e.topic for e in out] == ["risk.approved", "intent.accepted"]
    approval = out[0].parse_payload()
    assert isinstance(approval, RiskApproved)
    assert "funding" in approval.checks


def test_a_venue_without_an_account_never_blocks_and_allowed_venues_narrow_the_choice() -> None:
    unlimited: dict[str, dict[str, Decimal] | None] = {
        "sim": None,
        "uniswap_v3": {"WETH": Decimal(0)},
    }
    free = submitted(body("DISPOSE", "WETH", "USDC", "2"))
    assert [
        e.topic
        for e in events(validate_event(free, TOPOLOGY, ("sim", "uniswap_v3"), NOW, unlimited))
    ] == ["risk.approved", "intent.accepted"]
    pinned = submitted(body("DISPOSE", "WETH", "USDC", "2", allowedVenues=["uniswap_v3"]))
    out = events(validate_event(pinned, TOPOLOGY, ("sim", "uniswap_v3"), NOW, unlimited))
    assert [e.topic for e in out] == ["risk.rejected"]


class Account:
    """A venue with an account whose balances the test moves (the funding check reads it)."""

    name = "uniswap_v3"

    def __init__(self, weth: str) -> None:
        self.held = {"WETH": Decimal(weth), "USDC": Decimal(10**6)}

    async def balances(self) -> dict[str, Decimal]:
        return dict(self.held)


async def test_a_redelivered_intent_gets_the_answer_it_was_given_though_balances_moved() -> None:
    account = Account("5")
    context = StageContext(
        TOPOLOGY,
        Settings(),
        venues={"uniswap_v3": account},  # type: ignore[dict-item]
        clock=lambda: NOW,
    )
    stage = build(context)
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    first = submitted(body("DISPOSE", "WETH", "USDC", "2"), offset=0)
    record = Record(INGESTED, 0, 0, T0, None, encode_event(first))
    await stage.process([record], emit)
    approved = [o.value for o in sent]
    assert [decode_event(v).topic for v in approved] == ["risk.approved", "intent.accepted"]

    # The account is spent; the record comes again, next to a new intent of the same size.
    account.held["WETH"] = Decimal("0.5")
    other = body("DISPOSE", "WETH", "USDC", "2")
    other["clientIntentId"] = "c-2"
    second = Record(INGESTED, 0, 1, T0, None, encode_event(submitted(other, offset=1)))
    sent.clear()
    await stage.process([record, second], emit)
    assert [o.value for o in sent[:2]] == approved
    assert [decode_event(o.value).topic for o in sent[2:]] == ["risk.rejected"]
