"""Intents: what a strategy wants, never how."""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from pipeline.models.assets import AssetSpec
from pipeline.models.base import Amount, WireModel


class IntentType(StrEnum):
    ACQUIRE = "ACQUIRE"  # get exactly assets[0].amount of assets[0], paying with assets[1]
    DISPOSE = "DISPOSE"  # sell exactly assets[0].amount of assets[0], receiving assets[1]


class ExecutionStyle(StrEnum):
    AGGRESSIVE = "AGGRESSIVE"
    PASSIVE = "PASSIVE"
    ADAPTIVE = "ADAPTIVE"


def _printable(value: str) -> str:
    # Ids end up in keys, logs and headers, where a control character (a newline, the unit
    # separator) is at best invisible and at worst taken for a delimiter.
    for i, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise ValueError(f"must not contain control characters; found U+{ord(char):04X} "
                             f"at position {i}")
    return value


Identifier = Annotated[
    str,
    # The pattern is for the JSON Schema producers read; ``_printable`` gives the message.
    Field(min_length=1, max_length=128,
          json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}),
    AfterValidator(_printable),
]
"""A strategy's or a client's id: 1 to 128 characters, no control characters."""


def _two_items(value: Any) -> Any:
    # Checked before the items, and only here: a length constraint on the tuple would also
    # fire (counting the *valid* items) whenever one item is invalid.
    if isinstance(value, list | tuple) and len(value) != 2:
        raise ValueError(f"give exactly two assets, the subject then the counter asset; "
                         f"got {len(value)}")
    return value


AssetPair = Annotated[tuple[AssetSpec, AssetSpec], BeforeValidator(_two_items)]
"""``assets``: the asset the intent is about (with its amount), then the counter asset."""


class IntentConstraints(WireModel):
    max_slippage: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    """A fraction: 0.005 is 0.5 %."""
    time_window_ms: Annotated[int, Field(gt=0)]
    execution_style: ExecutionStyle = ExecutionStyle.ADAPTIVE
    allowed_venues: tuple[str, ...] | None = None
    limit_price: Amount | None = None


class Intent(WireModel):
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
    ml_features: dict[str, float] | None = None
    created_at_ms: int | None = None
    """When ingest accepted the record (the input record's timestamp).

    The time window counts from it.
    """

    @field_validator("id")
    @classmethod
    def _intent_prefix(cls, value: str) -> str:
        if not value.startswith("intent-"):
            raise ValueError("intent ids look like 'intent-<ULID>'")
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


class IntentSubmission(WireModel):
    """What a producer puts on ``sep.intents.submitted``: an intent without its id."""

    client_intent_id: Identifier | None = None
    strategy_id: Identifier
    type: IntentType
    assets: AssetPair
    constraints: IntentConstraints
    ml_features: dict[str, float] | None = None
