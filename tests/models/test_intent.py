"""Intents and submissions: wire shape, strictness, and the paths errors report."""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pipeline.models import (
    ExecutionStyle,
    Intent,
    IntentConstraints,
    IntentSubmission,
    IntentType,
)

USDC = {
    "symbol": "USDC",
    "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    "decimals": 6,
    "chainId": 1,
}
WETH = {
    "symbol": "WETH",
    "address": "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
    "decimals": 18,
    "chainId": 1,
}


def submission_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "clientIntentId": "c-1",
        "strategyId": "dca",
        "type": "ACQUIRE",
        "assets": [{"asset": WETH, "amount": "1.5"}, {"asset": USDC}],
        "constraints": {
            "maxSlippage": "0.005",
            "timeWindowMs": 300_000,
            "executionStyle": "PASSIVE",
        },
    }
    body.update(overrides)
    return body


def intent_json(**overrides: Any) -> dict[str, Any]:
    body = submission_json(id="intent-01ARYZ6S41TSV4RRFFQ69G5FAV", createdAtMs=1_000)
    body.update(overrides)
    return body


def locs(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.value.errors()}


def test_submission_parses_the_wire_form() -> None:
    sub = IntentSubmission.model_validate(submission_json())
    assert sub.strategy_id == "dca"
    assert sub.client_intent_id == "c-1"
    assert sub.type is IntentType.ACQUIRE
    assert sub.assets[0].amount == Decimal("1.5")
    assert sub.assets[1].amount is None
    assert sub.constraints.max_slippage == Decimal("0.005")
    assert sub.constraints.execution_style is ExecutionStyle.PASSIVE


def test_submission_round_trips_through_the_wire_form() -> None:
    sub = IntentSubmission.model_validate(submission_json())
    wire = sub.to_wire()
    assert wire == submission_json()  # camelCase keys, Decimals as the strings they were
    assert IntentSubmission.model_validate(wire) == sub


def test_submission_json_keeps_decimals_as_strings() -> None:
    raw = IntentSubmission.model_validate(submission_json()).model_dump_json(by_alias=True)
    assert '"amount":"1.5"' in raw
    assert '"maxSlippage":"0.005"' in raw  # no JSON number: a parser would make it a float
    again = IntentSubmission.model_validate_json(raw)
    assert again.constraints.max_slippage == Decimal("0.005")


def test_optional_fields_default() -> None:
    body = submission_json()
    del body["clientIntentId"]
    body["constraints"] = {"maxSlippage": "0.01", "timeWindowMs": 1000}
    sub = IntentSubmission.model_validate(body)
    assert sub.client_intent_id is None
    assert sub.constraints.execution_style is ExecutionStyle.ADAPTIVE
    assert sub.constraints.allowed_venues is None
    assert sub.ml_features is None
    assert "clientIntentId" not in sub.to_wire()


def test_unknown_top_level_field_is_rejected_with_its_name() -> None:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(stratgyId="typo"))
    assert locs(info) == {"stratgyId"}


def test_nested_errors_report_camel_case_paths() -> None:
    body = submission_json()
    body["assets"][0] = {"asset": {k: v for k, v in WETH.items() if k != "chainId"}, "amount": "1"}
    body["constraints"] = {
        "maxSlippage": "0.01",
        "timeWindowMs": "soon",
        "executionStyle": "YOLO",
        "allowedVenues": ["sim"],
        "extra": 1,
    }
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(body)
    found = locs(info)
    assert {
        "assets.0.asset.chainId",
        "constraints.timeWindowMs",
        "constraints.executionStyle",
        "constraints.extra",
    } <= found
    assert not any("_" in path for path in found), found  # no snake_case leaks out


def test_an_intent_is_never_mistaken_for_a_submission() -> None:
    # A producer that sends an id of its own is told so: ids are assigned by ingest.
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(id="intent-x"))
    assert locs(info) == {"id"}


@pytest.mark.parametrize(
    "assets",
    [[], [{"asset": WETH, "amount": "1"}], [{"asset": WETH}, {"asset": USDC}, {"asset": WETH}]],
)
def test_exactly_two_assets(assets: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(assets=assets))
    assert locs(info) == {"assets"}  # one error, for the list, whatever the items hold
    assert (
        f"exactly two assets, the subject then the counter asset; got {len(assets)}"
        in (info.value.errors()[0]["msg"])
    )


@pytest.mark.parametrize(
    ("constraints", "path"),
    [
        ({"maxSlippage": "-0.01", "timeWindowMs": 1000}, "constraints.maxSlippage"),
        ({"maxSlippage": "NaN", "timeWindowMs": 1000}, "constraints.maxSlippage"),
        ({"maxSlippage": "1", "timeWindowMs": 1000}, "constraints.maxSlippage"),
        ({"maxSlippage": "0.01", "timeWindowMs": 0}, "constraints.timeWindowMs"),
        ({"maxSlippage": "0.01"}, "constraints.timeWindowMs"),
        ({"timeWindowMs": 1000}, "constraints.maxSlippage"),
    ],
)
def test_constraint_bounds(constraints: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(constraints=constraints))
    assert locs(info) == {path}


@pytest.mark.parametrize("field", ["strategyId", "clientIntentId"])
@pytest.mark.parametrize("value", ["", "x" * 129])
def test_identifier_lengths(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(**{field: value}))
    assert locs(info) == {field}


CHECKED_CODE_POINTS = [*range(0x00, 0xA1), 0xAD, 0x200B, 0x2028, 0xFEFF, 0x1F600]


@pytest.mark.parametrize(
    "code", [c for c in CHECKED_CODE_POINTS if unicodedata.category(chr(c)) == "Cc"]
)
def test_every_control_character_is_refused_in_an_id(code: int) -> None:
    # The check is a regex over code point ranges; Unicode's category says what is control.
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(strategyId=f"s{chr(code)}x"))
    assert info.value.errors()[0]["ctx"] == {"char": f"U+{code:04X}", "position": 1}


@pytest.mark.parametrize(
    "code", [c for c in CHECKED_CODE_POINTS if unicodedata.category(chr(c)) != "Cc"]
)
def test_other_characters_are_allowed_in_an_id(code: int) -> None:
    submission = IntentSubmission.model_validate(submission_json(strategyId=f"s{chr(code)}x"))
    assert submission.strategy_id == f"s{chr(code)}x"


def test_type_must_be_acquire_or_dispose() -> None:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(submission_json(type="BUY"))
    assert locs(info) == {"type"}


def test_missing_required_fields_are_all_reported() -> None:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate({"strategyId": "s"})
    assert locs(info) == {"type", "assets", "constraints"}


# ----------------------------------------------------------------------------- Intent


def test_intent_parses_and_exposes_subject_and_counter() -> None:
    intent = Intent.model_validate(intent_json())
    assert intent.subject.asset.symbol == "WETH"
    assert intent.counter.asset.symbol == "USDC"
    assert intent.created_at_ms == 1_000


def test_intent_id_must_be_prefixed() -> None:
    with pytest.raises(ValidationError, match="intent-<ULID>") as info:
        Intent.model_validate(intent_json(id="01ARYZ6S41TSV4RRFFQ69G5FAV"))
    assert locs(info) == {"id"}


def test_deadline_is_creation_plus_window() -> None:
    intent = Intent.model_validate(intent_json(createdAtMs=1_000))
    assert intent.deadline_ms == 1_000 + 300_000


def test_no_deadline_without_creation_time() -> None:
    body = intent_json()
    del body["createdAtMs"]
    assert Intent.model_validate(body).deadline_ms is None


def test_constraints_are_immutable() -> None:
    constraints = IntentConstraints(max_slippage=Decimal("0.01"), time_window_ms=1000)
    with pytest.raises(ValidationError):
        constraints.time_window_ms = 5  # type: ignore[misc]


def test_limit_price_and_allowed_venues_on_the_wire() -> None:
    constraints = IntentConstraints(
        max_slippage=Decimal("0.01"),
        time_window_ms=1000,
        allowed_venues=("sim",),
        limit_price=Decimal("3000.10"),
    )
    wire = constraints.to_wire()
    assert wire["allowedVenues"] == ["sim"]
    assert wire["limitPrice"] == "3000.10"
    assert IntentConstraints.model_validate(wire) == constraints


# ----------------------------------------------------------------------------- messages
# What a producer reads when a field is wrong: the field's path and what it must be, the value
# as JSON writes it -- never pydantic's words for Python programmers.

PYTHON_WORDS = (
    "Unable to parse",
    "Decimal input",
    "Value error",
    "dictionary",
    "tuple",
    "instance of",
    "Input should be a valid integer",
)


def rejected_with(body: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        IntentSubmission.model_validate(body)
    (error,) = info.value.errors()
    return ".".join(str(p) for p in error["loc"]), str(error["msg"])


def with_field(path: str, raw: bytes) -> dict[str, Any]:
    """``submission_json()`` with the field at dotted ``path`` set to the JSON text ``raw``."""
    body = submission_json()
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = "__X__"
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(body).replace(b'"__X__"', raw))
    return parsed


WINDOW = (
    "must be a whole number of milliseconds from 1 to 31536000000 (a year), "
    "e.g. 300000 for 5 minutes; got "
)
FRACTION = 'must be a fraction from 0 up to (not including) 1, e.g. "0.005" for 0.5 %; got '
FLOAT_MONEY = (
    'must be a string, e.g. "1.5": a JSON number with a fraction or an exponent is '
    "read as a binary float and can lose digits; got "
)


@pytest.mark.parametrize(
    ("path", "raw", "message"),
    [
        ("constraints.timeWindowMs", b"1e30", WINDOW + "1e+30"),
        ("constraints.timeWindowMs", b"1" + b"0" * 30, WINDOW + "1e+30"),
        ("constraints.timeWindowMs", b"1.5", WINDOW + "1.5"),
        ("constraints.timeWindowMs", b"true", WINDOW + "true"),  # not taken for 1 ms
        ("constraints.timeWindowMs", b"-5", WINDOW + "-5"),
        ("constraints.timeWindowMs", b"31536000001", WINDOW + "31536000001"),
        ("constraints.timeWindowMs", b'"1e30"', WINDOW + '"1e30"'),
        ("constraints.maxSlippage", b"1e30", FRACTION + "1e+30"),
        ("constraints.maxSlippage", b'"1"', FRACTION + '"1"'),  # 100 % is no bound at all
        ("constraints.maxSlippage", b'"-0.1"', FRACTION + '"-0.1"'),
        ("constraints.maxSlippage", b"true", FRACTION + "true"),
        ("constraints.maxSlippage", b'"NaN"', 'must be a finite number; got "NaN"'),
        # Written out, 1e-100000 is 100 kB in any message that shows the slippage.
        (
            "constraints.maxSlippage",
            b'"1e-100000"',
            'has more than 18 decimal places; got "1e-100000"',
        ),
        ("assets.0.amount", b"1.5", FLOAT_MONEY + "1.5"),
        ("assets.0.amount", b"1e30", FLOAT_MONEY + "1e+30"),
        ("assets.0.amount", b"1" + b"0" * 30, FLOAT_MONEY + "1e+30"),
        (
            "assets.0.amount",
            b'"1e100"',
            'is too large: at most 42 digits before the decimal point; got "1e100"',
        ),
        ("assets.0.amount", b'"1e-40"', 'has more than 36 decimal places; got "1e-40"'),
        ("assets.0.amount", b'"Infinity"', 'must be a finite number; got "Infinity"'),
        ("assets.0.amount", b"true", 'must be a decimal number, e.g. "1.5"; got true'),
        ("assets.0.amount", b'"1,5"', 'must be a decimal number, e.g. "1.5"; got "1,5"'),
        ("constraints.limitPrice", b"3000.5", FLOAT_MONEY + "3000.5"),
        ("constraints.limitPrice", b'"NaN"', 'must be a finite number; got "NaN"'),
        (
            "constraints.allowedVenues",
            b'"sim"',
            'must be a list of venue names, e.g. ["sim"]; got "sim"',
        ),
        ("constraints", b"null", "must be a JSON object; got null"),
        ("assets.0", b'"WETH"', 'must be a JSON object; got "WETH"'),
        (
            "assets",
            b"{}",
            "must be a list of two assets, the subject then the counter asset; got an object",
        ),
        (
            "mlFeatures",
            b"[1]",
            "must be a JSON object of numbers by feature name, e.g. "
            '{"volatility": 0.2}; got a list',
        ),
        (
            "strategyId",
            b'"a\\u001fb"',
            "must not contain control characters; found U+001F at position 1",
        ),
    ],
)
def test_a_wrong_number_or_shape_is_said_in_words(path: str, raw: bytes, message: str) -> None:
    found_path, found = rejected_with(with_field(path, raw))
    assert (found_path, found) == (path, message)
    assert not any(words in found for words in PYTHON_WORDS)


def test_fractions_may_be_json_numbers_and_money_may_be_a_json_integer() -> None:
    # A slippage read as a float loses nothing that matters; an integer amount is exact.
    sub = IntentSubmission.model_validate(with_field("constraints.maxSlippage", b"0.005"))
    assert sub.constraints.max_slippage == Decimal("0.005")
    sub = IntentSubmission.model_validate(with_field("assets.0.amount", b"2"))
    assert sub.assets[0].amount == Decimal(2)


def test_a_whole_window_in_any_form_is_read() -> None:
    for raw in (b"300000", b"300000.0", b'"300000"', b"3e5"):
        sub = IntentSubmission.model_validate(with_field("constraints.timeWindowMs", raw))
        assert sub.constraints.time_window_ms == 300_000


@pytest.mark.parametrize("raw", [b'"NaN"', b'"Infinity"', b'"-Infinity"'])
def test_ml_features_are_finite(raw: bytes) -> None:
    body = submission_json(mlFeatures={"volatility": "__X__"})
    data = orjson.loads(orjson.dumps(body).replace(b'"__X__"', raw))
    path, _ = rejected_with(data)
    assert path == "mlFeatures.volatility"


def test_an_empty_venue_list_passes_the_model_for_validate_to_explain() -> None:
    # Only the validate stage knows the venues' names, which the message lists.
    body = submission_json()
    body["constraints"]["allowedVenues"] = []
    assert IntentSubmission.model_validate(body).constraints.allowed_venues == ()


def test_amount_schema_says_string_or_integer() -> None:
    schema = IntentSubmission.model_json_schema()["$defs"]["AssetSpec"]["properties"]["amount"]
    kinds = [alt.get("type") for alt in schema["anyOf"]]
    assert "number" not in kinds
    assert {"string", "integer"} <= set(kinds)
