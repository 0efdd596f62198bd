"""The built-in ``momentum`` strategy: a learned signal (ONNX) on bars of a pool's price.

Enabled under ``plugins.strategies.<id>`` in ``topology.yaml`` (see ``MomentumConfig``)::

    plugins:
      strategies:
        momentum:
          config: {asset: WETH, quote: USDC, venue: sim, budget: "500", max_position: "1"}

The model (``model/momentum.onnx``), how it was trained (``train.py``) and how good it is
(``MODEL_CARD.md``, ``model/metrics.json``) ship in this package.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.strategy import StrategyContext, StrategySpec
from plugins.strategies.momentum.config import MomentumConfig
from plugins.strategies.momentum.strategy import Decision, Momentum, decide

__all__ = [
    "NAME",
    "Decision",
    "Momentum",
    "MomentumConfig",
    "decide",
    "make_momentum",
    "sep_register_strategies",
]

NAME = "momentum"


def make_momentum(config: BaseModel, context: StrategyContext) -> Momentum:
    """The factory: no I/O (the model is loaded in ``on_start``)."""
    if not isinstance(config, MomentumConfig):
        raise TypeError(
            f"the momentum strategy needs a MomentumConfig, got {type(config).__name__}"
        )
    return Momentum(config, context)


@hookimpl
def sep_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    register(
        StrategySpec(
            name=NAME,
            config_model=MomentumConfig,
            factory=make_momentum,
            description="momentum on a pool's price bars, signal from an ONNX model",
        )
    )
