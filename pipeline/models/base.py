"""Shared pydantic configuration: camelCase on the wire, strict about unknown fields."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel


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
        """The JSON-ready dict as it goes on the wire (camelCase, Decimals as strings)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# Money is Decimal; on the wire it is a string so no JSON parser turns it into a float.
Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]


# Integer base units (wei, satoshi...) exceed 64 bits, which many JSON parsers (JavaScript's
# among them) cannot hold exactly: on the wire they are decimal strings too.
BaseUnits = Annotated[
    int,
    Field(ge=0),
    PlainSerializer(lambda n: str(n), return_type=str, when_used="json"),
]
