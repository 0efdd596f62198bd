"""A clob venue's configuration, validated from ``plugins.venues.<name>.config``.

Prices, tick and lot sizes are human Decimals (strings in YAML so no float creeps in); fees are
in hundredths of a basis point, as the sim venue counts them (1000 = 0.10 %), the maker fee may
be negative (a rebate) but not beyond the taker fee.  Markets are a mapping by market id, so
an error names its market: ``plugins.venues.clob_a.config.markets.WETH-USDC.tick_size``.

Checks that need the asset registry run when it is in the validation context
(``model_validate(data, context={"assets": {symbol: Asset}})``): the symbols exist and share
a chain, one lot is a whole number of base units of the base asset, and one tick times one
lot is a whole number of base units of the quote asset -- so every trade's notional is an
exact integer and the engine never rounds a price.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipeline.models.assets import Asset
from pipeline.plugins.config_context import assets_in_context, known_asset
from plugins.clob_venue.engine import FEE_DENOMINATOR
from plugins.clob_venue.makers import Ladder, ReferencePath
from plugins.clob_venue.units import exact_units

Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
MarketId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class MakerConfig(BaseModel):
    """The simulated market maker of one market."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spread_bps: Positive
    """Best ask over best bid, in basis points of the reference price."""
    levels: Annotated[int, Field(ge=1, le=1000)] = 10
    """Price levels quoted on each side (the book's depth)."""
    level_size: Positive
    """Base asset at the best level on each side (rounded down to whole lots)."""
    size_growth: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal(0)
    """Each level further out holds this fraction of ``level_size`` more (0.5: 1x, 1.5x, 2x)."""
    spacing_ticks: Annotated[int, Field(ge=1)] = 1
    refresh_ms: Annotated[int, Field(ge=1)] = 1000
    """How often the maker cancels its quotes and quotes again around the reference."""
    latency_ms: Annotated[int, Field(ge=0)] = 0
    """How late the maker sees the reference price."""


class MarketConfig(BaseModel):
    """One market: ``base`` traded against ``quote``, and its maker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Annotated[str, Field(min_length=1)]
    quote: Annotated[str, Field(min_length=1)]
    tick_size: Positive
    """The price increment, in quote per one base."""
    lot_size: Positive
    """The quantity increment, in base."""
    reference_price: Positive
    """Where the reference price starts (quote per one base)."""
    volatility_bps: Annotated[Decimal, Field(ge=0, le=5000, allow_inf_nan=False)] = Decimal(30)
    """How far the reference wanders from ``reference_price`` at most (see ``makers``)."""
    period_s: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] = Decimal(600)
    maker: MakerConfig | None = None
    """``None``: no maker; the book holds only what clients place."""

    @field_validator("base", "quote")
    @classmethod
    def _known_asset(cls, symbol: str, info: ValidationInfo) -> str:
        return known_asset(symbol, info)

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> MarketConfig:
        if self.base == self.quote:
            raise ValueError(f"base and quote are both {self.base!r}")
        if self.reference_price < self.tick_size:
            raise ValueError(
                f"reference_price {self.reference_price} is below one tick ({self.tick_size})"
            )
        if self.maker is not None and self.maker.level_size < self.lot_size:
            raise ValueError(
                f"maker.level_size {self.maker.level_size} is less than one lot ({self.lot_size})"
            )
        assets = assets_in_context(info)
        if assets is None or self.base not in assets or self.quote not in assets:
            return self  # unknown symbols were already reported by the field validator
        base, quote = assets[self.base], assets[self.quote]
        if base.chain_id != quote.chain_id:
            raise ValueError(
                f"{self.base} is on chain {base.chain_id} and {self.quote} on "
                f"chain {quote.chain_id}; a market lives on one chain"
            )
        if exact_units(self.lot_size, base.decimals) is None:
            raise ValueError(
                f"lot_size {self.lot_size} is not a whole number of {self.base} "
                f"base units ({base.decimals} decimals)"
            )
        if exact_units(self.tick_size * self.lot_size, quote.decimals) is None:
            raise ValueError(
                f"tick_size x lot_size = {self.tick_size * self.lot_size} {self.quote} is not a "
                f"whole number of {self.quote} base units ({quote.decimals} decimals): a "
                "notional could not be settled exactly; use a larger tick or lot"
            )
        return self

    def lot_units(self, assets: Mapping[str, Asset]) -> int:
        """Base units of the base asset in one lot."""
        return exact_units(self.lot_size, assets[self.base].decimals) or 0

    def notional_unit(self, assets: Mapping[str, Asset]) -> int:
        """Quote base units per tick per lot (the engine's ``unit``)."""
        return exact_units(self.tick_size * self.lot_size, assets[self.quote].decimals) or 0

    def reference(self, seed: int, market_id: str) -> ReferencePath:
        return ReferencePath.of(
            seed,
            market_id,
            float(self.reference_price),
            float(self.volatility_bps),
            float(self.period_s),
        )

    def ladder(self) -> Ladder | None:
        if self.maker is None:
            return None
        return Ladder(
            spread_bps=self.maker.spread_bps,
            levels=self.maker.levels,
            level_qty=int(self.maker.level_size // self.lot_size),
            size_growth=self.maker.size_growth,
            spacing_ticks=self.maker.spacing_ticks,
        )


class ClobVenueConfig(BaseModel):
    """``plugins.venues.<clob instance>.config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maker_fee: Annotated[int, Field(gt=-FEE_DENOMINATOR, lt=FEE_DENOMINATOR)] = 0
    """Hundredths of a basis point of a maker's notional; negative: a rebate."""
    taker_fee: Annotated[int, Field(ge=0, lt=FEE_DENOMINATOR)] = 0
    latency_ms: Annotated[int, Field(ge=0)] = 0
    """Time from a client's submission to its order reaching the book."""
    markets: dict[MarketId, MarketConfig]
    seed: int = 0
    """Phases of the reference prices: venues with one seed see one reference."""
    book_depth: Annotated[int, Field(ge=1, le=10_000)] = 100
    """Levels per side published on the book topic."""
    snapshot_interval_ms: Annotated[int, Field(ge=1)] = 5000
    """A snapshot per market at least this often (a consumer that saw a gap resyncs on it)."""
    poll_interval_ms: Annotated[int, Field(ge=1)] = 50
    """How often the book source looks for changes (and lets the makers refresh)."""
    ledger_file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")] = "ledger.sqlite"
    """File name of the ledger inside the venue's data directory (a name, not a path)."""

    @field_validator("markets")
    @classmethod
    def _some_markets(cls, markets: dict[str, MarketConfig]) -> dict[str, MarketConfig]:
        if not markets:
            raise ValueError("configure at least one market")
        return markets

    @model_validator(mode="after")
    def _rebate_within_taker_fee(self) -> ClobVenueConfig:
        if self.maker_fee < -self.taker_fee:
            raise ValueError(
                f"maker rebate {-self.maker_fee} exceeds the taker fee "
                f"{self.taker_fee}: the venue would pay for every trade"
            )
        return self
