"""The dca strategy's configuration, validated from ``plugins.strategies.<id>.config``.

Amounts are human units (strings in YAML so no float creeps in).  Checks that need the asset
registry (symbols exist, one chain) run when the registry is in the validation context, as
the plugin manager passes it: ``model_validate(data, context={"assets": {symbol: Asset}})``;
a failure is reported at its YAML path (``plugins.strategies.dca.config.asset``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipeline.models.intent import MAX_TIME_WINDOW_MS
from pipeline.plugins.config_context import assets_in_context, known_asset

MIN_INTERVAL_MS = 1_000
"""A buy a second at most: the runner sees market updates at about that rate anyway."""

Symbol = Annotated[str, Field(min_length=1)]


class DcaConfig(BaseModel):
    """Spend ``amount`` of ``quote`` on ``asset`` every ``interval_ms``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset: Symbol
    """What to buy (a symbol of the topology's ``assets``)."""
    quote: Symbol = "USDC"
    """What to pay with."""
    amount: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    """How much ``quote`` each buy spends, in human units ("100" USDC)."""
    interval_ms: Annotated[int, Field(ge=MIN_INTERVAL_MS)]
    start_ms: Annotated[int, Field(ge=0)] = 0
    """Interval 0 starts here (epoch ms); intervals are counted from it, so the interval a
    moment falls in, and with it the client intent id, is the same in every process."""
    max_buys: Annotated[int, Field(ge=1)] | None = None
    """Stop after this many intervals (``None``: never)."""
    max_slippage: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.01")
    time_window_ms: Annotated[int, Field(ge=1, le=MAX_TIME_WINDOW_MS)] = 300_000
    """How long each buy may take (the risk limits in ``topology.yaml`` bound it too)."""
    allowed_venues: tuple[str, ...] | None = None

    @field_validator("asset", "quote")
    @classmethod
    def _known_asset(cls, symbol: str, info: ValidationInfo) -> str:
        return known_asset(symbol, info)

    @field_validator("amount")
    @classmethod
    def _whole_base_units(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        assets = assets_in_context(info)
        quote = assets.get(info.data.get("quote", "")) if assets is not None else None
        exponent = amount.normalize().as_tuple().exponent
        if quote is not None and isinstance(exponent, int) and -exponent > quote.decimals:
            raise ValueError(
                f"{amount} has more decimal places than {quote.symbol} has ({quote.decimals})"
            )
        return amount

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> DcaConfig:
        if self.asset == self.quote:
            raise ValueError(f"asset and quote are both {self.asset!r}")
        assets = assets_in_context(info)
        if assets is None or self.asset not in assets or self.quote not in assets:
            return self  # unknown symbols were already reported by the field validator
        asset, quote = assets[self.asset], assets[self.quote]
        if asset.chain_id != quote.chain_id:
            raise ValueError(
                f"{self.asset} is on chain {asset.chain_id} and {self.quote} on chain "
                f"{quote.chain_id}; a buy trades on one chain"
            )
        return self
