"""Values a producer writes: messages in words, the value shown as JSON writes it, bounded."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import orjson
import pytest
from pydantic import BaseModel, Field, ValidationError

from pipeline.models.inputs import (
    SHOWN_CHARS,
    DecimalNumber,
    FiniteFloat,
    WholeNumber,
    decimal_problem,
    shown,
    worded,
)


class Sample(BaseModel):
    """Fields as the wire models declare them, with defaults so each test sets one."""

    ms: Annotated[
        int,
        WholeNumber(
            "a whole number of milliseconds", 1, 1000, high_text="1000 (a second)", example="500"
        ),
    ] = 1
    money: Annotated[
        Decimal, DecimalNumber('must be a decimal number, e.g. "1.5"', 42, 36, floats=False)
    ] = Decimal(1)
    fraction: Annotated[
        Decimal, Field(ge=0, lt=1), DecimalNumber("must be a fraction below 1", None, 18)
    ] = Decimal(0)
    score: FiniteFloat = 0.0


def message(**field: Any) -> str:
    with pytest.raises(ValidationError) as info:
        Sample.model_validate(field)
    (error,) = info.value.errors()
    return str(error["msg"])


# ----------------------------------------------------------------------------- shown


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e30, "1e+30"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ("abc", '"abc"'),
        ("a\nb", '"a\\nb"'),  # escaped as JSON, not a Python repr
        (2**70, str(2**70)),  # beyond what orjson writes
        ({"a": 1}, "an object"),
        ([1, 2], "a list"),
        (Decimal("1E+100000"), "1e+100000"),  # never written out digit by digit
        (Decimal("-0.25"), "-0.25"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_shown_writes_values_as_json_does(value: object, text: str) -> None:
    assert shown(value) == text


def test_shown_is_bounded() -> None:
    assert len(shown("x" * 60_000)) <= SHOWN_CHARS + 5
    assert len(shown(Decimal("1." + "1" * 10_000))) <= SHOWN_CHARS + 3
    assert len(shown(object())) <= SHOWN_CHARS  # not a JSON value: named by its type


# ----------------------------------------------------------------------------- whole numbers


def test_whole_number_keeps_what_pydantic_reads() -> None:
    assert Sample.model_validate({"ms": 500}).ms == 500
    assert Sample.model_validate({"ms": 500.0}).ms == 500
    assert Sample.model_validate({"ms": "500"}).ms == 500


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (1e30, "1e+30"),  # pydantic: "Unable to parse input string as an integer, ..."
        (orjson.loads(b"1" + b"0" * 30), "1e+30"),  # orjson reads an integer past 64 bits so
        (1.5, "1.5"),
        (True, "true"),  # pydantic would take it for 1
        (0, "0"),
        (1001, "1001"),
        ("soon", '"soon"'),
        (None, "null"),
        ([5], "a list"),
    ],
)
def test_whole_number_failures_say_what_it_must_be(value: object, got: str) -> None:
    assert message(ms=value) == (
        f"must be a whole number of milliseconds from 1 to 1000 (a second), e.g. 500; got {got}"
    )


def test_whole_number_bounds_are_in_the_json_schema() -> None:
    schema = Sample.model_json_schema()["properties"]["ms"]
    assert (schema["minimum"], schema["maximum"], schema["type"]) == (1, 1000, "integer")


# ----------------------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5", Decimal("1.5")),
        (" 2 ", Decimal(2)),
        (7, Decimal(7)),  # a JSON integer is exact
        ("1.500", Decimal("1.500")),
        ("1" * 42, Decimal("1" * 42)),
        ("0." + "0" * 35 + "1", Decimal("1E-36")),
    ],
)
def test_money_accepts_strings_and_integers(value: object, expected: Decimal) -> None:
    assert Sample.model_validate({"money": value}).money == expected


@pytest.mark.parametrize("value", [1.5, 0.1, 1e30, 1e-7])
def test_money_refuses_json_numbers_that_were_floats(value: float) -> None:
    assert message(money=value).startswith(
        'must be a string, e.g. "1.5": a JSON number with a fraction or an exponent is read as '
        "a binary float and can lose digits; got "
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, 'must be a decimal number, e.g. "1.5"; got true'),
        ("abc", 'must be a decimal number, e.g. "1.5"; got "abc"'),
        ("0x10", 'must be a decimal number, e.g. "1.5"; got "0x10"'),
        ({"value": 1}, 'must be a decimal number, e.g. "1.5"; got an object'),
        ("NaN", 'must be a finite number; got "NaN"'),
        ("-Infinity", 'must be a finite number; got "-Infinity"'),
        ("1e100", 'is too large: at most 42 digits before the decimal point; got "1e100"'),
        (
            "1" * 43,
            "is too large: at most 42 digits before the decimal point; got "
            f'"{"1" * SHOWN_CHARS}..."',
        ),
        ("1e-37", 'has more than 36 decimal places; got "1e-37"'),
    ],
)
def test_money_failures_say_what_is_wrong(value: object, text: str) -> None:
    assert message(money=value) == text


def test_a_fraction_may_be_a_json_number_and_out_of_range_says_the_range() -> None:
    assert Sample.model_validate({"fraction": 0.005}).fraction == Decimal("0.005")
    # A field's own bound: its ``needs``, not a count of digits.
    assert message(fraction="1e30") == 'must be a fraction below 1; got "1e30"'
    assert message(fraction="1e-19") == 'has more than 18 decimal places; got "1e-19"'


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.5", None),
        ("0E-100000", None),  # zero has no significant digit to count
        ("1.50000000000000000000000000000000000000000", None),  # trailing zeros do not count
        ("1E+42", "is too large: at most 42 digits before the decimal point"),
        ("1E+41", None),
        ("1E-37", "has more than 36 decimal places"),
        ("sNaN", "must be a finite number"),
        ("x", None),  # not a number: the caller says what the field needs
    ],
)
def test_decimal_problem(value: str, problem: str | None) -> None:
    assert decimal_problem(value, whole_digits=42, places=36) == problem


# ----------------------------------------------------------------------------- others


def test_worded_replaces_a_pattern_message() -> None:
    class Code(BaseModel):
        code: Annotated[str, worded("code", "must be three capital letters")]

    with pytest.raises(ValidationError) as info:
        Code.model_validate({"code": 5})
    assert info.value.errors()[0]["msg"] == "must be three capital letters; got 5"


def test_a_brace_in_the_value_is_not_a_placeholder() -> None:
    assert message(money="{got}") == 'must be a decimal number, e.g. "1.5"; got "{got}"'


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_finite_float_refuses_what_pydantic_reads_from_strings(value: str) -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate({"score": value})
