"""Execution plans: how the planner decided to carry out one intent."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from pipeline.models.base import Amount, BaseUnits, WireModel


class StepKind(StrEnum):
    SWAP = "swap"
    ORDER = "order"


class SwapMode(StrEnum):
    EXACT_IN = "EXACT_IN"  # spend amount_in, receive at least min_out
    EXACT_OUT = "EXACT_OUT"  # receive amount_out, spend at most max_in


class RouteLeg(WireModel):
    """One hop through one pool. Amounts in integer base units of the leg's tokens."""

    pool_id: str
    venue: str
    token_in: str
    token_out: str
    amount_in: BaseUnits
    amount_out: BaseUnits


class ExecutionStep(WireModel):
    step_id: str
    kind: StepKind = StepKind.SWAP
    venue: str
    mode: SwapMode
    legs: Annotated[tuple[RouteLeg, ...], Field(min_length=1)]
    asset_in: str
    """Symbol of the asset spent (the plan's assets are resolved by symbol in the registry)."""
    asset_out: str
    amount_in: Amount
    """EXACT_IN: what is spent. EXACT_OUT: the quoted input."""
    min_out: Amount
    """EXACT_IN: the slippage floor. EXACT_OUT: equals ``amount_out``."""
    amount_out: Amount
    """The quoted output (EXACT_IN) or the wanted output (EXACT_OUT)."""
    max_in: Amount
    """EXACT_IN: equals ``amount_in``. EXACT_OUT: the slippage ceiling on what is spent."""
    not_before_ms: int | None = None
    limit_price: Amount | None = None
    """ORDER steps: the worst price the plan's sweep takes on this venue, in the venue's own
    units (quote per one base, before its fee): the IOC order's limit, so an unchanged book
    fills the whole child while ``max_in`` / ``min_out`` still bound its total.  ``None``:
    the venue derives the limit from the bound alone."""


class ExecutionPlan(WireModel):
    id: str
    intent_id: str
    steps: Annotated[tuple[ExecutionStep, ...], Field(min_length=1)]
    estimated_out: Amount
    estimated_cost: Amount
    """Fees paid to pools, in units of the asset spent."""
    estimated_duration_ms: int
    risk_score: Annotated[int, Field(ge=0, le=100)]
    price_impact: Amount
    """A fraction: the route's price against the mid price before the trade."""
