"""What a strategy plugin provides: a ``StrategySpec`` (name, config model, factory).

A strategy turns market data into intents.  The strategy runner (a stage declared in the
topology) builds every strategy ``topology.yaml`` enables under ``plugins.strategies``
(``build_strategies``), calls ``on_start`` once, then ``on_market`` with each market update
and ``on_fill`` with each fill of the strategy's own intents, and ``on_stop`` at the end.
It produces what ``on_market`` returns onto ``sep.intents.submitted``, setting the strategy
id (the key under ``plugins.strategies``) and a deterministic client intent id, so a
restarted runner submits nothing twice.  ``on_market`` and ``on_fill`` are synchronous and
pure over the strategy's own state: they run inside the runner's batch loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from pipeline.models.assets import Asset
from pipeline.models.events import ExecStepFilled
from pipeline.models.intent import IntentSubmission
from pipeline.models.market import BookSnapshot, PoolState


@dataclass(frozen=True)
class MarketSnapshot:
    """The market as the runner last saw it when an update arrived."""

    at_ms: int
    pools: Mapping[str, Sequence[PoolState]]
    """By venue."""
    books: Mapping[str, BookSnapshot]
    """By ``venue/market_id`` (deltas already applied)."""


@dataclass(frozen=True)
class StrategyFill:
    """A step of one of the strategy's own intents filled (``exec.step_filled``)."""

    intent_id: str
    client_intent_id: str | None
    fill: ExecStepFilled
    at_ms: int


@dataclass(frozen=True)
class StrategyContext:
    """What the pipeline hands a strategy factory."""

    strategy_id: str
    """The key under ``plugins.strategies``: the ``strategyId`` of its intents."""
    assets: Mapping[str, Asset]
    """By symbol."""
    data_dir: Path
    """The strategy's own directory (created by the runner, not by the factory)."""


@runtime_checkable
class Strategy(Protocol):
    async def on_start(self) -> None:
        """Load what the strategy needs (a model file, its saved state). Called once."""

    def on_market(self, snapshot: MarketSnapshot) -> Sequence[IntentSubmission]:
        """The intents to submit now (often none).  ``strategyId`` and ``clientIntentId``
        are set by the runner."""
        ...

    def on_fill(self, fill: StrategyFill) -> None:
        """One of the strategy's intents traded (a step of it filled)."""

    async def on_stop(self) -> None:
        """Release what ``on_start`` opened."""


@dataclass(frozen=True)
class StrategySpec:
    """A strategy a plugin registers: its name, config model and factory (no I/O)."""

    name: str
    config_model: type[BaseModel]
    factory: Callable[[BaseModel, StrategyContext], Strategy]
    description: str = ""
