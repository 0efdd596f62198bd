"""A denylist risk check: a ``sep`` plugin packaged on its own (``pip install``-able).

The plugin is this module: its one hook registers a ``RiskCheckSpec``; the pipeline does the
rest (validates ``plugins.risk_checks.denylist.config`` with ``DenylistConfig``, builds the
check with ``make_denylist`` and runs it in the validate stage on every intent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, model_validator

from pipeline.models.intent import Intent
from pipeline.plugins import RiskBreach, RiskCheckContext, RiskCheckSpec, hookimpl

__all__ = ["Denylist", "DenylistConfig", "make_denylist", "sep_register_risk_checks"]

NAME = "denylist"


def _known_asset(symbol: str, info: ValidationInfo) -> str:
    # The pipeline validates the config with the topology's asset registry as context.
    known: dict[str, Any] | None = (info.context or {}).get("assets")
    if known is not None and symbol not in known:
        raise ValueError(f"unknown asset {symbol!r}; known: {', '.join(sorted(known))}")
    return symbol


class DenylistConfig(BaseModel):
    """``plugins.risk_checks.denylist.config`` in ``topology.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies: tuple[str, ...] = ()
    """Strategy ids whose intents are refused."""
    assets: tuple[Annotated[str, AfterValidator(_known_asset)], ...] = ()
    """Asset symbols no intent may buy or sell (symbols of the topology's ``assets``)."""

    @model_validator(mode="after")
    def _lists_something(self) -> DenylistConfig:
        if not self.strategies and not self.assets:
            raise ValueError("lists nothing: give strategies, assets or both")
        return self


class Denylist:
    """The check: pure and fast, as the validate stage runs it once per intent."""

    name = NAME

    def __init__(self, config: DenylistConfig) -> None:
        self.strategies = frozenset(config.strategies)
        self.assets = frozenset(config.assets)

    def check(self, intent: Intent, now_ms: int) -> RiskBreach | None:
        if intent.strategy_id in self.strategies:
            return RiskBreach(
                NAME,
                f"strategy {intent.strategy_id!r} is on the denylist",
                "not listed",
                intent.strategy_id,
            )
        for spec in intent.assets:
            if spec.asset.symbol in self.assets:
                return RiskBreach(
                    NAME,
                    f"asset {spec.asset.symbol} is on the denylist",
                    "not listed",
                    spec.asset.symbol,
                )
        return None


def make_denylist(config: BaseModel, context: RiskCheckContext) -> Denylist:
    """The factory: ``config`` was validated by the pipeline with ``DenylistConfig``."""
    if not isinstance(config, DenylistConfig):
        raise TypeError(f"the denylist needs a DenylistConfig, got {type(config).__name__}")
    return Denylist(config)


@hookimpl
def sep_register_risk_checks(register: Callable[[RiskCheckSpec], None]) -> None:
    register(
        RiskCheckSpec(
            name=NAME,
            config_model=DenylistConfig,
            factory=make_denylist,
            description="refuse intents from listed strategies or trading listed assets",
        )
    )
