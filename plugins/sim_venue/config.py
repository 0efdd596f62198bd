"""The sim venue's configuration, validated from ``plugins.venues.sim.config`` in the topology.

Reserves are human units (strings in YAML so no float creeps in); fees are in hundredths of a
basis point, as Uniswap counts them (3000 = 0.30 %).  Checks that need the asset registry
(symbols exist, one chain per pool, reserves of at least one base unit) run when the registry
is in the validation context: ``model_validate(data, context={"assets": {symbol: Asset}})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipeline.models.assets import Asset
from pipeline.plugins.config_context import assets_in_context, known_asset
from plugins.sim_venue.flow import MarketFlow
from plugins.sim_venue.units import to_units

FEE_DENOMINATOR = 1_000_000
"""``fee`` is a fraction of this: 3000 / 1_000_000 = 0.30 %."""

Reserve = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class PoolConfig(BaseModel):
    """One constant-product pool and its initial reserves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
    token0: Annotated[str, Field(min_length=1)]
    token1: Annotated[str, Field(min_length=1)]
    reserve0: Reserve
    reserve1: Reserve
    fee: Annotated[int, Field(ge=0, lt=FEE_DENOMINATOR)]

    @field_validator("token0", "token1")
    @classmethod
    def _known_asset(cls, symbol: str, info: ValidationInfo) -> str:
        return known_asset(symbol, info)

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> PoolConfig:
        if self.token0 == self.token1:
            raise ValueError(f"token0 and token1 are both {self.token0!r}")
        assets = assets_in_context(info)
        if assets is None or self.token0 not in assets or self.token1 not in assets:
            return self  # unknown symbols were already reported by the field validator
        asset0, asset1 = assets[self.token0], assets[self.token1]
        if asset0.chain_id != asset1.chain_id:
            raise ValueError(
                f"{self.token0} is on chain {asset0.chain_id} and {self.token1} on chain "
                f"{asset1.chain_id}; a pool lives on one chain"
            )
        for name, amount, asset in (
            ("reserve0", self.reserve0, asset0),
            ("reserve1", self.reserve1, asset1),
        ):
            if to_units(amount, asset.decimals) < 1:
                raise ValueError(
                    f"{name} {amount:f} is less than one base unit of {asset.symbol} "
                    f"({asset.decimals} decimals)"
                )
        return self

    def base_reserves(self, assets: Mapping[str, Asset]) -> tuple[int, int]:
        """The reserves in integer base units of each token."""
        return (
            to_units(self.reserve0, assets[self.token0].decimals),
            to_units(self.reserve1, assets[self.token1].decimals),
        )


class InjectedFailures(BaseModel):
    """A failure-injection knob for tests and drills: the venue behaves as a broken one.

    The ledger's submissions number ``after + 1`` to ``after + first`` (counted in the ledger,
    so shared by every worker and kept across restarts) are accepted and then fail when they
    execute, with ``StepRejected(reason)`` as a revert would; every other one trades normally.
    Off unless configured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: Annotated[int, Field(ge=0)]
    after: Annotated[int, Field(ge=0)] = 0
    reason: Annotated[str, Field(pattern=r"^[a-z_]+$")] = "reverted"

    def fails(self, number: int | None) -> bool:
        return number is not None and self.after < number <= self.after + self.first


class SimVenueConfig(BaseModel):
    """``plugins.venues.sim.config``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: Annotated[int, Field(ge=0)] = 0
    """Simulated time from submission to the final receipt."""
    pools: tuple[PoolConfig, ...]
    ledger_file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")] = "ledger.sqlite"
    """File name of the ledger inside the venue's data directory (a name, not a path)."""
    market_interval_ms: Annotated[int, Field(ge=100, le=3_600_000)] = 1_000
    """How often its market source publishes every pool on ``sep.market.pools`` (a tick the
    strategy runner's strategies see even when nothing traded; ``plugins.sim_venue.market``)."""
    inject_failures: InjectedFailures | None = None
    """Tests and drills only: make some submissions fail (see ``InjectedFailures``)."""
    flow: MarketFlow | None = None
    """The rest of the market: trade against its own pools every ``flow.every_ms`` (a seeded
    random walk with trends, ``plugins.sim_venue.flow``).  Off unless configured."""

    @model_validator(mode="after")
    def _flow_pools_exist(self) -> SimVenueConfig:
        if self.flow is not None and self.flow.pools is not None:
            known = {pool.pool_id for pool in self.pools}
            unknown = [p for p in self.flow.pools if p not in known]
            if unknown:
                raise ValueError(f"flow.pools names no pool of this venue: {unknown}")
        return self

    @field_validator("pools")
    @classmethod
    def _unique_pool_ids(cls, pools: tuple[PoolConfig, ...]) -> tuple[PoolConfig, ...]:
        # A field validator (not a model one) so the error's path ends in ``.pools``; not
        # ``min_length``, which pydantic also reports when an item is invalid.
        if not pools:
            raise ValueError("configure at least one pool")
        seen: set[str] = set()
        for pool in pools:
            if pool.pool_id in seen:
                raise ValueError(f"pool id {pool.pool_id!r} appears more than once")
            seen.add(pool.pool_id)
        return pools
