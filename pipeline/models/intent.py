"""Intents: what a strategy wants, never how."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from pipeline.models.assets import AssetSpec
from pipeline.models.base import InputAmount, InputModel
from pipeline.models.inputs import DecimalNumber, FiniteFloat, WholeNumber, input_error


class IntentType(StrEnum):
    ACQUIRE = "ACQUIRE"  # get exactly assets[0].amount of assets[0], paying with assets[1]
    DISPOSE = "DISPOSE"  # sell exactly assets[0].amount of assets[0], receiving assets[1]


class ExecutionStyle(StrEnum):
    AGGRESSIVE = "AGGRESSIVE"
    PASSIVE = "PASSIVE"
    ADAPTIVE = "ADAPTIVE"


class PartialFills(StrEnum):
    """What happens to the rest of an order-book child order that its IOC left unfilled
    (the book moved between plan and execution)."""

    FAIL = "FAIL"
    """The execution ends ``exec.failed`` with the reason (what filled, what did not, why);
    the fills stand.  The default."""
    REPLAN = "REPLAN"
    """The rest is planned again on the pair's books as they are then, and executed; what
    still cannot be filled is failed with the reason."""


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Unicode's control characters (category ``Cc``): exactly these 65 code points.  One regex
search instead of a ``unicodedata.category`` call per character (ids are checked a few
times per intent; the loop was ~6 % of a backtest's CPU)."""


def _printable(value: str) -> str:
    # Ids end up in keys, logs and headers, where a control character (a newline, the unit
    # separator) is at best invisible and at worst taken for a delimiter.
    found = _CONTROL.search(value)
    if found is not None:
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters; found {char} at position {position}",
            {"char": f"U+{ord(found.group()):04X}", "position": found.start()},
        )
    return value


Identifier = Annotated[
    str,
    # The pattern is for the JSON Schema producers read; ``_printable`` gives the message.
    Field(
        min_length=1,
        max_length=128,
        json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"},
    ),
    AfterValidator(_printable),
]
"""A strategy's or a client's id: 1 to 128 characters, no control characters."""


_LIST_TYPES = (list, tuple)
"""``list | tuple`` made once (the union would be made at every call, per intent)."""


def _two_items(value: Any) -> Any:
    # Checked before the items, and only here: a length constraint on the tuple would also
    # fire (counting the *valid* items) whenever one item is invalid.
    if not isinstance(value, _LIST_TYPES):
        raise input_error(
            "two_assets", "must be a list of two assets, the subject then the counter asset", value
        )
    if len(value) != 2:
        raise PydanticCustomError(
            "two_assets",
            "give exactly two assets, the subject then the counter asset; got {count}",
            {"count": len(value)},
        )
    return value


AssetPair = Annotated[tuple[AssetSpec, AssetSpec], BeforeValidator(_two_items)]
"""``assets``: the asset the intent is about (with its amount), then the counter asset."""


def _venue_list(value: Any) -> Any:
    if not isinstance(value, _LIST_TYPES):
        raise input_error("venue_list", 'must be a list of venue names, e.g. ["sim"]', value)
    return value


def _feature_object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise input_error(
            "features",
            'must be a JSON object of numbers by feature name, e.g. {"volatility": 0.2}',
            value,
        )
    return value


Features = Annotated[dict[str, FiniteFloat], BeforeValidator(_feature_object)]
"""``mlFeatures``: finite numbers by name (a NaN would reach the model as a score)."""

MAX_TIME_WINDOW_MS = 365 * 24 * 3600 * 1000
"""No intent waits longer than a year; the risk limits (``topology.yaml``) narrow it further.

A bound here keeps absurd windows (``1e30``) out of every event and gives them a message
about the number, before the risk limits are known."""

SLIPPAGE_PLACES = 18
"""Decimal places of ``maxSlippage``: finer than any venue's price, and it keeps the value's
printed form short ("1e-100000" written out is 100 kB in a rejection message)."""


class IntentConstraints(InputModel):
    max_slippage: Annotated[
        Decimal,
        Field(ge=0, lt=1),
        DecimalNumber(
            'must be a fraction from 0 up to (not including) 1, e.g. "0.005" for 0.5 %',
            None,
            SLIPPAGE_PLACES,
        ),
    ]
    """A fraction: 0.005 is 0.5 %."""
    time_window_ms: Annotated[
        int,
        WholeNumber(
            "a whole number of milliseconds",
            1,
            MAX_TIME_WINDOW_MS,
            high_text=f"{MAX_TIME_WINDOW_MS} (a year)",
            example="300000 for 5 minutes",
        ),
    ]
    execution_style: ExecutionStyle = ExecutionStyle.ADAPTIVE
    allowed_venues: Annotated[tuple[str, ...], BeforeValidator(_venue_list)] | None = None
    """Venues the intent may use; omitted, every venue.  An empty list is refused by the
    validate stage, which knows the venues' names."""
    limit_price: InputAmount | None = None
    on_partial_fill: PartialFills | None = None
    """What the executor does with the unfilled rest of a book child order; omitted,
    ``FAIL`` (left out of the wire form then, like every unset option)."""


class Intent(InputModel):
    """An intent as it travels after ingest (``id`` assigned).

    ``assets[0]`` is the asset the intent is about, with its amount: what to acquire (ACQUIRE)
    or what to sell (DISPOSE).  ``assets[1]`` is the counter asset, paid or received.
    """

    id: str
    client_intent_id: Identifier | None = None
    strategy_id: Identifier
    type: IntentType
    assets: AssetPair
    constraints: IntentConstraints
    ml_features: Features | None = None
    created_at_ms: int | None = None
    """When ingest accepted the record (the input record's timestamp).

    The time window counts from it.
    """

    @field_validator("id")
    @classmethod
    def _intent_prefix(cls, value: str) -> str:
        if not value.startswith("intent-"):
            raise PydanticCustomError("intent_id", "intent ids look like 'intent-<ULID>'")
        return value

    @property
    def subject(self) -> AssetSpec:
        return self.assets[0]

    @property
    def counter(self) -> AssetSpec:
        return self.assets[1]

    @property
    def deadline_ms(self) -> int | None:
        if self.created_at_ms is None:
            return None
        return self.created_at_ms + self.constraints.time_window_ms


class IntentSubmission(InputModel):
    """What a producer puts on ``sep.intents.submitted``: an intent without its id."""

    client_intent_id: Identifier | None = None
    strategy_id: Identifier
    type: IntentType
    assets: AssetPair
    constraints: IntentConstraints
    ml_features: Features | None = None
