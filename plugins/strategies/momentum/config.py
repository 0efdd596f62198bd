"""The momentum strategy's configuration, validated from ``plugins.strategies.<id>.config``.

Money is Decimal (strings in YAML); thresholds are probabilities of the model's "up" class.
Registry checks (symbols known, one chain) run as dca's do, naming their YAML path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipeline.models.intent import MAX_TIME_WINDOW_MS
from pipeline.plugins.config_context import assets_in_context, known_asset

Symbol = Annotated[str, Field(min_length=1)]
Probability = Annotated[Decimal, Field(gt=0, lt=1)]
Money = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class MomentumConfig(BaseModel):
    """Trade ``asset`` against ``quote`` on the model's signal, within a budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset: Symbol = "WETH"
    quote: Symbol = "USDC"
    venue: Annotated[str, Field(min_length=1)] = "sim"
    """Whose published pools price it (``sep.market.pools``)."""
    pool_id: str | None = None
    """The pool of ``venue`` to price from; ``None``: its deepest ``asset``/``quote`` pool."""
    bar_ms: Annotated[int, Field(ge=100, le=86_400_000)] = 1_000
    """Prices are sampled into bars of this length (the model was trained on bars: the
    last price seen in a bar is its close); a decision is taken when a bar closes."""
    buy_above: Probability = Decimal("0.58")
    """Buy when P(up) is at least this; the size grows from 0 here to ``budget`` at 1."""
    sell_below: Probability = Decimal("0.42")
    """Sell (what it holds) when P(up) is at most this; full ``budget`` worth at 0."""
    budget: Money = Decimal("1000")
    """The most one intent trades, in ``quote`` (at full signal strength)."""
    max_position: Money = Decimal("1")
    """The most ``asset`` it holds (from its fills); buys stop there."""
    min_notional: Annotated[Decimal, Field(ge=0)] = Decimal("1")
    """Smaller trades, in ``quote``, are not worth an intent."""
    cooldown_bars: Annotated[int, Field(ge=0)] = 5
    """Bars to wait after an intent before the next (its fill has time to come back)."""
    max_slippage: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.01")
    time_window_ms: Annotated[int, Field(ge=1, le=MAX_TIME_WINDOW_MS)] = 60_000
    allowed_venues: tuple[str, ...] | None = None

    @field_validator("asset", "quote")
    @classmethod
    def _known_asset(cls, symbol: str, info: ValidationInfo) -> str:
        return known_asset(symbol, info)

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> MomentumConfig:
        if self.asset == self.quote:
            raise ValueError(f"asset and quote are both {self.asset!r}")
        if self.sell_below >= self.buy_above:
            raise ValueError(
                f"sell_below ({self.sell_below}) must be under buy_above ({self.buy_above})"
            )
        assets = assets_in_context(info)
        if assets is None or self.asset not in assets or self.quote not in assets:
            return self
        if assets[self.asset].chain_id != assets[self.quote].chain_id:
            raise ValueError(f"{self.asset} and {self.quote} are on different chains")
        return self
