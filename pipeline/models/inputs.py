"""Values a producer writes, checked with messages a person can act on.

pydantic's own messages for a number are written for Python programmers: ``1e30`` as a
window gets "Unable to parse input string as an integer, exceeded maximum size", ``true`` as
an amount gets "Decimal input should be an integer, float, string or Decimal object", and
``true`` as a window is even taken for 1.  The validators here leave pydantic's checks as
they are on the happy path and, when a check fails, say what the field must be and show the
value as JSON writes it::

    constraints.timeWindowMs: must be a whole number of milliseconds from 1 to
        31536000000 (a year), e.g. 300000 for 5 minutes; got 1e+30

Cost, measured: a wrap validator is one Python call per field, about 0.5 us when the value is
fine, so they are used on what producers write (an ``Intent`` and its parts: about 3 us more
per ``Intent`` validated), not on the events our own stages write.

The errors are ``PydanticCustomError``: a plain ``ValueError`` would reach the producer
prefixed with "Value error, ".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
from annotated_types import GroupedMetadata
from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

SHOWN_CHARS = 40
"""How much of a rejected value a message repeats: enough to recognise it, never a flood."""


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def shown(value: object) -> str:
    """``value`` as JSON would write it (``1e30``, ``true``, ``"abc"``), cut to about 40
    characters: for the "got ..." of a message.  Never a Python repr."""
    if isinstance(value, str):
        return orjson.dumps(_cut(value)).decode()
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int) and not isinstance(value, bool):
        return _cut(str(value))  # orjson refuses integers beyond 64 bits
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("-" if value < 0 else "") + "Infinity"
    if isinstance(value, Decimal):
        # "1E+100000" written out would be 100 kB: past 30 digits, in exponent notation.
        if value.is_finite() and abs(value.adjusted()) < 30:
            return _cut(format(value, "f"))
        return _cut(format(value, "e") if value.is_finite() else str(value))
    try:
        return _cut(orjson.dumps(value).decode())
    except TypeError:  # not a JSON value: a Python caller's mistake, named by its type
        return type(value).__name__


def input_error(kind: str, message: str, value: object) -> PydanticCustomError:
    """An error whose message is ``message`` followed by "; got <value>".

    The value goes in the error's context, not the template: a ``{`` in what a producer sent
    must not be taken for a placeholder.
    """
    return PydanticCustomError(kind, message + "; got {got}", {"got": shown(value)})


@dataclass(frozen=True)
class WholeNumber(GroupedMetadata):
    """``Annotated`` metadata for an ``int`` field: ``low <= n <= high``, saying so when not.

    ``true`` is refused (pydantic would take it for 1), as is anything with a fraction;
    ``1000.0`` and ``"1000"`` are read as 1000, as pydantic reads them.  The bounds are
    pydantic constraints, so the JSON Schema shows them too.
    """

    what: str
    """What the field holds: "a whole number of milliseconds"."""
    low: int
    high: int
    high_text: str = ""
    """``high`` in words, if it helps: "31536000000 (a year)"."""
    example: str = ""

    def __iter__(self) -> Iterator[object]:
        needs = f"must be {self.what} from {self.low} to {self.high_text or self.high}"
        if self.example:
            needs += f", e.g. {self.example}"

        def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, bool):
                raise input_error("whole_number", needs, value)
            try:
                return handler(value)
            except ValueError:  # pydantic's ValidationError is one
                raise input_error("whole_number", needs, value) from None

        yield from Field(ge=self.low, le=self.high).metadata
        yield WrapValidator(check)


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def decimal_problem(value: object, *, whole_digits: int | None, places: int) -> str | None:
    """What keeps ``value`` from being a decimal with at most ``whole_digits`` digits before
    the point (None: any number) and ``places`` after it (trailing zeros do not count), or
    None."""
    number = _as_decimal(value)
    if number is None:
        return None
    if not number.is_finite():
        return "must be a finite number"
    if number.is_zero():
        return None
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    n = len(digits)
    while n > 1 and digits[n - 1] == 0:  # "1.500" has one decimal place
        n -= 1
        exponent += 1
    if whole_digits is not None and n + exponent > whole_digits:
        return f"is too large: at most {whole_digits} digits before the decimal point"
    if -exponent > places:
        return f"has more than {places} decimal places"
    return None


@dataclass(frozen=True)
class DecimalNumber(GroupedMetadata):
    """``Annotated`` metadata for a ``Decimal`` field whose failures are said in words.

    At most ``whole_digits`` digits before the point (None: bounded otherwise, by the field's
    range) and ``places`` after it, finite.  ``needs`` is what to say when the value is not a
    number or breaks the field's other bounds ('must be a decimal number, e.g. "1.5"'); too
    many digits and NaN get their own message.

    ``floats=False`` for money: a JSON number with a fraction or an exponent was read as a
    binary float before any model saw it, so its digits may be gone already
    ("0.1000000000000000000001" arrives as 0.1).  A JSON integer is exact and allowed.
    """

    needs: str
    whole_digits: int | None
    places: int
    floats: bool = True

    def __iter__(self) -> Iterator[object]:
        needs, whole_digits, places, floats = (
            self.needs,
            self.whole_digits,
            self.places,
            self.floats,
        )

        def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
            if not floats and isinstance(value, float):
                raise input_error(
                    "decimal_number",
                    (
                        'must be a string, e.g. "1.5": a JSON number with a fraction or an '
                        "exponent is read as a binary float and can lose digits"
                    ),
                    value,
                )
            try:
                return handler(value)
            except ValueError:
                problem = decimal_problem(value, whole_digits=whole_digits, places=places)
                raise input_error("decimal_number", problem or needs, value) from None

        yield from Field(
            allow_inf_nan=False,
            decimal_places=places,
            max_digits=(None if whole_digits is None else whole_digits + places),
        ).metadata
        yield WrapValidator(check)


def worded(kind: str, needs: str) -> WrapValidator:
    """``Annotated`` metadata that says ``needs`` ("must be ...") whenever the field's own
    checks fail: for fields whose pydantic message would show a regular expression."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValueError:
            raise input_error(kind, needs, value) from None

    return WrapValidator(check)


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float that is a number: "NaN" and "Infinity" (which pydantic reads from strings) are not."""
