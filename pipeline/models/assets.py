"""Assets: a token on one chain. "USDC on chain 1" and "USDC on 42161" are different assets."""

from __future__ import annotations

from decimal import ROUND_DOWN, Context, Decimal, localcontext
from typing import Annotated

from pydantic import Field, model_validator

from pipeline.models.base import Amount, WireModel

# Enough digits for any amount of any token (uint256 has 78 decimal digits).
EXACT = Context(prec=100)

Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]


class Asset(WireModel):
    symbol: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
    address: Address
    decimals: Annotated[int, Field(ge=0, le=36)]
    chain_id: Annotated[int, Field(gt=0)]

    @property
    def key(self) -> str:
        """Identity used by the router and the risk engine: chain and address, case-folded."""
        return f"{self.chain_id}:{self.address.lower()}"

    def to_base_units(self, amount: Decimal) -> int:
        """Human units to integer base units, truncating dust below one base unit.

        Exact at any size: the default 28-digit context would round a large wei amount.
        """
        with localcontext(EXACT):
            return int(amount.scaleb(self.decimals).to_integral_value(rounding=ROUND_DOWN))

    def from_base_units(self, units: int) -> Decimal:
        with localcontext(EXACT):
            return Decimal(units).scaleb(-self.decimals)


class AssetSpec(WireModel):
    """An asset and how much of it: an absolute ``amount`` or a ``percentage`` of holdings."""

    asset: Asset
    amount: Amount | None = None
    percentage: Annotated[Decimal, Field(gt=0, le=100)] | None = None

    @model_validator(mode="after")
    def _amount_xor_percentage(self) -> AssetSpec:
        if self.amount is not None and self.percentage is not None:
            raise ValueError("give either amount or percentage, not both")
        return self
