"""Helpers for the clob venue tests: assets, configs, a controllable clock, steps.

(A module of its own, not ``conftest``: test modules of several directories import helpers,
and every directory's ``conftest`` is a module named ``conftest``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from pipeline.models import Asset, ExecutionStep, RouteLeg, SwapMode
from plugins.clob_venue import ClobVenue, ClobVenueConfig

ASSETS = {
    a.symbol: a
    for a in (
        Asset(symbol="WETH", address="0x" + "11" * 20, decimals=18, chain_id=1),
        Asset(symbol="USDC", address="0x" + "22" * 20, decimals=6, chain_id=1),
        Asset(symbol="DAI", address="0x" + "33" * 20, decimals=18, chain_id=1),
        Asset(symbol="ARB", address="0x" + "44" * 20, decimals=18, chain_id=42161),
    )
}


def market(maker: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """WETH/USDC: tick 0.01 USDC, lot 0.001 WETH (one tick x one lot = 10 USDC base units)."""
    data: dict[str, Any] = {
        "base": "WETH",
        "quote": "USDC",
        "tick_size": "0.01",
        "lot_size": "0.001",
        "reference_price": "3000",
        "volatility_bps": "0",
    }
    if maker is not None:
        data["maker"] = maker
    data.update(overrides)
    return data


def clob_config(**overrides: Any) -> ClobVenueConfig:
    data: dict[str, Any] = {
        "taker_fee": 1000,
        "maker_fee": -200,
        "markets": {"WETH-USDC": market()},
    }
    data.update(overrides)
    return ClobVenueConfig.model_validate(data, context={"assets": ASSETS})


class Clock:
    """Milliseconds that move only when told."""

    def __init__(self, now_ms: float = 1_700_000_000_000.0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms

    def advance(self, ms: float) -> None:
        self.now_ms += ms


OpenVenue = Callable[..., Awaitable[ClobVenue]]


def make_step(
    asset_in: str,
    asset_out: str,
    amount: str,
    *,
    mode: SwapMode = SwapMode.EXACT_IN,
    bound: str | None = None,
    step_id: str = "step-1",
    venue: str = "clob_a",
    market_id: str = "WETH-USDC",
) -> ExecutionStep:
    """EXACT_IN spends ``amount`` with ``min_out = bound`` (0 if None); EXACT_OUT receives
    ``amount`` with ``max_in = bound`` (unbounded if None)."""
    legs = (
        RouteLeg(
            pool_id=market_id,
            venue=venue,
            token_in=asset_in,
            token_out=asset_out,
            amount_in=0,
            amount_out=0,
        ),
    )
    value = Decimal(amount)
    if mode is SwapMode.EXACT_IN:
        floor = Decimal(bound or "0")
        return ExecutionStep(
            step_id=step_id,
            venue=venue,
            mode=mode,
            legs=legs,
            asset_in=asset_in,
            asset_out=asset_out,
            amount_in=value,
            min_out=floor,
            amount_out=floor,
            max_in=value,
        )
    ceiling = Decimal(bound or "1e12")
    return ExecutionStep(
        step_id=step_id,
        venue=venue,
        mode=mode,
        legs=legs,
        asset_in=asset_in,
        asset_out=asset_out,
        amount_in=ceiling,
        min_out=value,
        amount_out=value,
        max_in=ceiling,
    )
