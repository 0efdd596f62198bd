"""The built-in ``dca`` strategy: buy a fixed quote amount of an asset every interval.

Enabled under ``plugins.strategies.dca`` in ``topology.yaml`` (see ``DcaConfig``), e.g.::

    plugins:
      strategies:
        dca:
          config: {asset: WETH, quote: USDC, amount: "100", interval_ms: 3600000}

The strategy runner builds it, hands it market updates (its clock) and its fills, and
submits its intents (``plugins.strategies.dca.strategy``).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.strategy import StrategyContext, StrategySpec
from plugins.strategies.dca.config import DcaConfig
from plugins.strategies.dca.strategy import Dca, DcaTotals, client_intent_id

__all__ = [
    "NAME",
    "Dca",
    "DcaConfig",
    "DcaTotals",
    "client_intent_id",
    "make_dca",
    "sep_register_strategies",
]

NAME = "dca"


def make_dca(config: BaseModel, context: StrategyContext) -> Dca:
    """The factory: ``config`` was validated by the plugin manager (no I/O here)."""
    if not isinstance(config, DcaConfig):
        raise TypeError(f"the dca strategy needs a DcaConfig, got {type(config).__name__}")
    return Dca(config, context)


@hookimpl
def sep_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    register(
        StrategySpec(
            name=NAME,
            config_model=DcaConfig,
            factory=make_dca,
            description="buy a fixed quote amount of an asset every interval",
        )
    )
