"""Test plugins shared by the plugin-system tests: classes registered by hand (STYLE rule 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.models.intent import Intent
from pipeline.plugins import (
    MarketSnapshot,
    RiskBreach,
    RiskCheckContext,
    RiskCheckSpec,
    StrategyContext,
    StrategyFill,
    StrategySpec,
    VenueContext,
    VenueSpec,
    hookimpl,
)
from pipeline.topology import Topology, load_topology

TOPOLOGY = load_topology()


class PaperConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spread_bps: int = 5


class PaperVenue:
    """Just enough of a venue to be built; the manager never calls into it."""

    def __init__(self, config: PaperConfig, context: VenueContext) -> None:
        self.name = "paper"
        self.config = config
        self.context = context


def paper_factory(config: BaseModel, context: VenueContext) -> Any:
    assert isinstance(config, PaperConfig)
    return PaperVenue(config, context)


class PaperPlugin:
    @hookimpl
    def sep_register_venues(self, register: Callable[[VenueSpec], None]) -> None:
        register(VenueSpec(name="paper", config_model=PaperConfig, factory=paper_factory))


class EveryIntervalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval_s: int
    amount: str = "1"


class EveryInterval:
    """A strategy that records what it is told."""

    def __init__(self, config: EveryIntervalConfig, context: StrategyContext) -> None:
        self.config = config
        self.context = context
        self.fills: list[StrategyFill] = []

    async def on_start(self) -> None:
        return None

    def on_market(self, snapshot: MarketSnapshot) -> list[Any]:
        return []

    def on_fill(self, fill: StrategyFill) -> None:
        self.fills.append(fill)

    async def on_stop(self) -> None:
        return None


def every_interval(config: BaseModel, context: StrategyContext) -> Any:
    assert isinstance(config, EveryIntervalConfig)
    return EveryInterval(config, context)


class StrategyPlugin:
    @hookimpl
    def sep_register_strategies(self, register: Callable[[StrategySpec], None]) -> None:
        register(
            StrategySpec(
                name="every_interval", config_model=EveryIntervalConfig, factory=every_interval
            )
        )


class MaxAmountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_amount: int


class MaxAmount:
    """Refuses intents whose amount exceeds ``max_amount`` units of their subject asset."""

    name = "max_amount"

    def __init__(self, config: MaxAmountConfig, context: RiskCheckContext) -> None:
        self.limit = config.max_amount
        self.context = context

    def check(self, intent: Intent, now_ms: int) -> RiskBreach | None:
        amount = intent.subject.amount or 0
        if amount <= self.limit:
            return None
        return RiskBreach(
            self.name, f"amount {amount} exceeds {self.limit}", str(self.limit), str(amount)
        )


def max_amount(config: BaseModel, context: RiskCheckContext) -> Any:
    assert isinstance(config, MaxAmountConfig)
    return MaxAmount(config, context)


class RiskPlugin:
    @hookimpl
    def sep_register_risk_checks(self, register: Callable[[RiskCheckSpec], None]) -> None:
        register(RiskCheckSpec(name="max_amount", config_model=MaxAmountConfig, factory=max_amount))


def topology_with(**sections: dict[str, Any]) -> Topology:
    """The repository's topology with some ``plugins`` sections replaced."""
    data = TOPOLOGY.model_dump(by_alias=True)
    data["plugins"].update(sections)
    return Topology.model_validate(data)


BUILTIN_VENUES = frozenset({"sim", "uniswap_v3", "clob", "clob_a", "clob_b"})
"""The venue names the built-in plugins register."""
