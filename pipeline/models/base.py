"""Shared pydantic configuration: camelCase on the wire, strict about unknown fields."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pipeline.models.inputs import DecimalNumber, input_error


class WireModel(BaseModel):
    """Base of every model that crosses a topic: camelCase aliases, snake_case in Python.

    ``extra="forbid"`` makes a misspelt field a rejection with its path, not a silent drop.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        ser_json_inf_nan="strings",
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready dict as it goes on the wire (camelCase, Decimals as strings).

        ``model_dump(mode="json", by_alias=True, exclude_none=True)``, calling the serializer
        it calls with the same arguments (its other defaults are the serializer's): its own
        Python layer was ~0.5 us of ~1.9 for an ``exec.step_filled`` payload, and every event
        a stage makes dumps one (``tests/models/test_base.py``)."""
        return self.__pydantic_serializer__.to_python(  # type: ignore[no-any-return]
            self, mode="json", by_alias=True, exclude_none=True
        )


M = TypeVar("M", bound=BaseModel)

_TEMPLATES: dict[type[BaseModel], tuple[dict[str, Any], frozenset[str]]] = {}
"""Per model: every field in field order with its default (None if required), and the
required fields."""


def _template(model: type[BaseModel]) -> tuple[dict[str, Any], frozenset[str]]:
    found = _TEMPLATES.get(model)
    if found is None:
        if model.__private_attributes__:
            raise TypeError(f"{model.__name__} has private attributes: build it by validating")
        fields = model.model_fields
        found = _TEMPLATES[model] = (
            {n: None if f.is_required() else f.get_default() for n, f in fields.items()},
            frozenset(n for n, f in fields.items() if f.is_required()),
        )
    return found


def built(model: type[M], **values: Any) -> M:
    """A ``model`` of ``values`` our own code computed, set as validation would leave them.

    Only for values already of the field types and within their bounds (amounts of at most
    36 decimal places, integer base units >= 0...): nothing is checked or converted, so
    never for anything read from outside (validate that).  For models whose validation runs
    Python (an ``Amount``'s, per field): a plan step validated in ~8 us is built in ~2.5;
    a model of plain fields validates faster than this (pydantic-core is quick there), and
    ``model_construct`` is slower than both.  The fields are set in their order, defaults
    for those not given (``tests/models/test_built.py``: equal to the validated model).
    """
    template, required = _template(model)
    fields = {**template, **values}  # the template's order; values replace its defaults
    if len(fields) != len(template):
        raise TypeError(f"{model.__name__}: unknown fields {sorted(set(values) - set(template))}")
    if not required <= values.keys():
        raise TypeError(f"{model.__name__}: {', '.join(sorted(required - values.keys()))} required")
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", fields)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


_OBJECT_TYPES = (dict, BaseModel)


class InputModel(WireModel):
    """A model a producer writes (an intent and its parts).

    Anything but a JSON object where one belongs is refused in words: pydantic would say
    "Input should be a valid dictionary or instance of IntentConstraints", a Python class.
    """

    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        # A tuple of types, not ``dict | BaseModel``: the union was made again on every call
        # (~40 ns of ~60), and this runs for each of an intent's six models.
        if isinstance(data, _OBJECT_TYPES):
            return data
        raise input_error("json_object", "must be a JSON object", data)


# Bounds of every amount on the wire: uint256 has 78 decimal digits, and no asset has more
# than 36 decimals (``Asset.decimals``).  They keep the plain notation below bounded: without
# them "1e100000", 8 bytes in, is 100 kB out.
AMOUNT_MAX_DIGITS = 78
AMOUNT_DECIMAL_PLACES = 36
_QUANTUM = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)
_WIDE = Context(prec=2 * AMOUNT_MAX_DIGITS)


def wire_amount(value: Decimal) -> Decimal:
    """``value`` with at most 36 decimal places, rounded half-even; unchanged if it has fewer.

    For amounts the pipeline computes (a ratio of two amounts can have any number of places,
    and an ``Amount`` field refuses more than 36).  As the validator of ``Amount`` it is exact:
    by then pydantic has checked that the value *needs* no more than 36 places, so it only
    drops trailing zeros ("0E-100000" has no significant digit to count, yet prints as
    100 000 zeros).
    """
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_DECIMAL_PLACES:
        return value.quantize(_QUANTUM, context=_WIDE)
    return value


_AMOUNT_NEEDS = 'must be a decimal number, e.g. "1.5"'
_AMOUNT_WHOLE_DIGITS = AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES

# Money is Decimal; on the wire it is a string so no JSON parser turns it into a float.
# Plain pydantic checks: the events that carry these are written by our own stages, and a
# worded message (``InputAmount``) costs a Python call per field on every event decoded.
Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES),
    AfterValidator(wire_amount),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]

InputAmount = Annotated[
    Decimal,
    DecimalNumber(_AMOUNT_NEEDS, _AMOUNT_WHOLE_DIGITS, AMOUNT_DECIMAL_PLACES, floats=False),
    AfterValidator(wire_amount),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"anyOf": [{"type": "string", "examples": ["1.5"]}, {"type": "integer"}]}),
]
"""An ``Amount`` a producer writes: a decimal string or a JSON integer, never a JSON number
with a fraction or an exponent -- the JSON parser has made that a float, digits lost.  What
is wrong is said in words ("is too large: at most 42 digits before the decimal point")."""


# Integer base units (wei, satoshi...) exceed 64 bits, which many JSON parsers (JavaScript's
# among them) cannot hold exactly: on the wire they are decimal strings too.
BaseUnits = Annotated[
    int,
    Field(ge=0),
    PlainSerializer(lambda n: str(n), return_type=str, when_used="json"),
]
