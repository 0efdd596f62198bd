"""What a venue plugin provides: a ``VenueSpec`` (name, config model, factory) and ``Venue``s.

Amounts cross this boundary as ``Decimal`` human units inside ``ExecutionStep``; the venue
converts to integer base units with the asset's decimals, and reports fills back as Decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from pipeline.models.assets import Asset
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionStep


class VenueError(Exception):
    """A venue could not do what was asked; ``reason`` is short and machine-readable."""

    def __init__(self, venue: str, reason: str, detail: str = "") -> None:
        self.venue = venue
        self.reason = reason
        self.detail = detail
        super().__init__(f"{venue}: {reason}" + (f" ({detail})" if detail else ""))


class StepRejected(VenueError):
    """The venue refused or reverted the step (slippage not met, insufficient funds...).

    Definitive: retrying the same step will not help.
    """


class TransientVenueError(VenueError):
    """A temporary failure (timeout, connection reset): retry within the intent's window."""


@dataclass(frozen=True)
class Submission:
    """A step the venue has accepted. ``order_ref`` is its handle (tx hash, order id)."""

    step_id: str
    order_ref: str


@dataclass(frozen=True)
class Fill:
    step_id: str
    order_ref: str
    amount_in: Decimal
    amount_out: Decimal
    landed_at: int | None = None
    """The version of the venue's pool states that first includes this trade (its block on a
    chain), as ``PoolState.version`` counts; ``None`` if the venue cannot say.  The planner
    stops counting its own pending trade once the pool states it plans on reach it."""
    fee: Decimal | None = None
    """The venue's fee on this fill in ``fee_asset`` (human units), already counted in
    ``amount_in`` or ``amount_out``; ``None`` if the venue does not itemise it (an AMM's fee
    is inside its price)."""
    fee_asset: str | None = None


class SimulatedTime(Protocol):
    """A backtest's clock (``pipeline.backtest``), for a venue that simulates time."""

    def now_ms(self) -> float:
        """The simulated now (the data's event time), in ms since the epoch."""
        ...

    async def wait_until(self, due_ms: float) -> None:
        """Return once the simulated clock is at ``due_ms`` (it moves itself there)."""
        ...

    def next_id(self, prefix: str) -> str:
        """A fresh id that is the same in every run of the same backtest."""
        ...


@dataclass(frozen=True)
class VenueContext:
    """What the pipeline hands a venue factory: where to keep state and which assets exist."""

    data_dir: Path
    assets: Mapping[str, Asset]
    """By symbol."""
    simulated: SimulatedTime | None = None
    """Set in a backtest: a venue that simulates trading takes its time and ids from it
    (``None``: the wall clock, live or paper)."""
    read_only: bool = False
    """Paper mode: this live venue is built for its market data only (its paper twin
    trades in its place).  It must send nothing and need no signer; ``submit`` refuses."""


@runtime_checkable
class Venue(Protocol):
    """An AMM venue as the planner and the executor use it."""

    name: str

    async def start(self) -> None:
        """Open connections and durable state. Called once by the pipeline."""

    async def stop(self) -> None:
        """Release everything ``start`` opened."""

    async def pools(self) -> list[PoolState]:
        """The pools this venue exposes to the router, as they are now."""

    async def quote(self, step: ExecutionStep) -> Decimal:
        """What the step would yield now (EXACT_IN: amount out; EXACT_OUT: amount in)."""

    async def lookup(self, step_id: str) -> Submission | None:
        """The submission for ``step_id`` if this venue already has it, else ``None``.

        The executor asks before submitting, so a redelivered step is never sent twice.
        """

    async def submit(self, step: ExecutionStep) -> Submission:
        """Send the step. Raises ``StepRejected`` or ``TransientVenueError``."""

    async def wait_receipt(self, submission: Submission, timeout_s: float) -> Fill:
        """Wait until the submission is final. Raises ``StepRejected`` if it failed."""


# ------------------------------------------------------------------ declared capabilities
# What a venue can do beyond the ``Venue`` protocol is declared, never probed with
# getattr/hasattr: a number the planner needs is a ``Routing`` the venue class declares
# (``DeclaresRouting``), an extra operation is a runtime-checkable protocol it implements.


@dataclass(frozen=True)
class Routing:
    """How the planner may route a trade on a venue (the defaults: one path, no gas)."""

    max_splits: int = 1
    """A plan may split a trade across up to this many pool-disjoint paths..."""
    pays_gas: bool = False
    """...each swap pays gas, so a split must save more than its extra swap's gas."""


@runtime_checkable
class DeclaresRouting(Protocol):
    routing: Routing


def routing_of(venue: Venue) -> Routing:
    """The routing a venue declares, else the defaults."""
    return venue.routing if isinstance(venue, DeclaresRouting) else Routing()


@runtime_checkable
class HasBalances(Protocol):
    """A venue that trades from an account whose holdings it can report (the validate
    stage's funding check reads them); a venue without one is treated as unlimited."""

    async def balances(self) -> Mapping[str, Decimal]:
        """What the trading account holds, by asset symbol, in human units."""
        ...


@runtime_checkable
class ReplaysMarket(Protocol):
    """A simulated venue whose pools a backtest moves to recorded or generated states (the
    market moved them; the venue's own fills move them in between)."""

    async def set_pools(self, states: Sequence[PoolState]) -> None:
        """Take these states' reserves for the pools of the same ids."""
        ...


@runtime_checkable
class PaperTwin(Protocol):
    """A venue standing in for a live one in paper mode, under the live venue's name: it
    fills at the live venue's market data (its pools' states on ``sep.market.pools``, handed
    over with ``set_market``) and sends nothing.  ``live`` is the live venue, built
    read-only, whose market source publishes those states (``MarketPublisher``)."""

    live: Venue

    async def set_market(self, states: Sequence[tuple[PoolState, int]]) -> int:
        """Take these published states, each with its record's offset on the market topic
        (so a state several workers hand over is taken once, and never an older one after a
        newer); a pool not seen before joins.  How many states were taken."""
        ...


TwinFactory = Callable[[str, Venue, VenueContext], PaperTwin]
"""``twin(name, live_venue, context)``: a paper twin of ``live_venue`` named ``name``."""


@dataclass(frozen=True)
class VenueSpec:
    """A venue type a plugin registers: its name, config model and factory."""

    name: str
    config_model: type[BaseModel]
    factory: Callable[[BaseModel, VenueContext], Venue]
    description: str = ""
    live: bool = False
    """It trades for real (a chain, an exchange): in paper mode a paper twin fills in its
    place and it is built read-only (``VenueContext.read_only``) for its market data."""
    twin: TwinFactory | None = None
    """This venue type can stand in for live venues in paper mode (the sim venue)."""
