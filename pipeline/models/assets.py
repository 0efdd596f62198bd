"""Assets: a token on one chain. "USDC on chain 1" and "USDC on 42161" are different assets."""

from __future__ import annotations

from decimal import ROUND_DOWN, Context, Decimal
from typing import Annotated

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from pipeline.models.base import InputAmount, InputModel
from pipeline.models.inputs import DecimalNumber, WholeNumber, worded

# Enough digits for any amount of any token (uint256 has 78 decimal digits).
EXACT = Context(prec=100)

Address = Annotated[
    str,
    Field(pattern=r"^0x[0-9a-fA-F]{40}$"),
    worded("address", 'must be "0x" and 40 hexadecimal digits'),
]

MAX_CHAIN_ID = 2**53 - 1
"""The largest chain id: the largest integer a JavaScript client holds exactly (EIP-2294
bounds real chains lower still)."""


class Asset(InputModel):
    symbol: Annotated[
        str,
        Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$"),
        worded("symbol", "must be 1 to 32 letters, digits, '.', '_' or '-', e.g. \"WETH\""),
    ]
    address: Address
    decimals: Annotated[int, WholeNumber("a whole number of decimals", 0, 36)]
    chain_id: Annotated[
        int, WholeNumber("a whole number", 1, MAX_CHAIN_ID, example="1 for Ethereum")
    ]

    @property
    def key(self) -> str:
        """Identity used by the router and the risk engine: chain and address, case-folded."""
        return f"{self.chain_id}:{self.address.lower()}"

    def to_base_units(self, amount: Decimal) -> int:
        """Human units to integer base units, truncating dust below one base unit.

        Exact at any size: the default 28-digit context would round a large wei amount.
        (The context is passed to each operation: ``localcontext`` cost ~10 us a call.)
        """
        scaled = amount.scaleb(self.decimals, context=EXACT)
        return int(scaled.to_integral_value(rounding=ROUND_DOWN, context=EXACT))

    def from_base_units(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.decimals, context=EXACT)


class AssetSpec(InputModel):
    """An asset and how much of it: an absolute ``amount`` or a ``percentage`` of holdings."""

    asset: Asset
    amount: InputAmount | None = None
    percentage: (
        Annotated[
            Decimal,
            Field(gt=0, le=100),
            DecimalNumber('must be a percentage above 0 and at most 100, e.g. "50"', None, 18),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _amount_xor_percentage(self) -> AssetSpec:
        if self.amount is not None and self.percentage is not None:
            raise PydanticCustomError(
                "amount_xor_percentage", "give either amount or percentage, not both"
            )
        return self
