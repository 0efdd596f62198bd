"""What a strategy plugin provides: a ``StrategySpec`` (name, config model, factory).

A strategy turns market data into intents.  The strategy runner (a stage declared in the
topology) builds every strategy ``topology.yaml`` enables under ``plugins.strategies``
(``build_strategies``), calls ``on_start`` once, then ``on_market`` with each market update
and ``on_fill`` with each fill of the strategy's own intents, and ``on_stop`` at the end.
It produces what ``on_market`` returns onto ``sep.intents.submitted``, setting the strategy
id (the key under ``plugins.strategies``) and a deterministic client intent id, so a
restarted runner submits nothing twice.  ``on_market`` and ``on_fill`` are synchronous and
pure over the strategy's own state: they run inside the runner's batch loop.

A strategy whose state must survive a restart (dca's last interval bought, momentum's price
history) also implements ``KeepsState``, a capability declared by implementing it (checked
with ``isinstance``, never probed attribute by attribute):

    save_state() -> dict           JSON-able (Decimals as strings); the runner calls it after
                                   every batch and writes it, when it changed, to its
                                   changelog table (``sep-strategy-runner-state``, key = the
                                   strategy id) with the batch's intents
    restore_state(state) -> None   called once, after ``on_start`` and before the first
                                   ``on_market``/``on_fill``, with what the last
                                   ``save_state`` returned (by this process or one before it);
                                   never called for a strategy without saved state

A state written by another version of the strategy may not fit: ``restore_state`` should
raise ``ValueError`` then, and the runner starts the strategy afresh (logged).  The state is
also carried over when a strategy is reconfigured at run time (a new instance with the new
config, restored from the old one's ``save_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


JsonState = dict[str, Any]
"""A strategy's saved state: what ``orjson.dumps`` can write (no Decimal, no float for money)."""


@runtime_checkable
class KeepsState(Protocol):
    """A strategy whose state survives a restart (see the module docstring)."""

    def save_state(self) -> JsonState: ...

    def restore_state(self, state: JsonState) -> None: ...


@dataclass(frozen=True)
class StrategySpec:
    """A strategy a plugin registers: its name, config model and factory (no I/O)."""

    name: str
    config_model: type[BaseModel]
    factory: Callable[[BaseModel, StrategyContext], Strategy]
    description: str = ""
