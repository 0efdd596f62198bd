"""Fixtures for the sim venue: a small asset registry, configs, started venues, steps.

(No ``__init__.py`` here or in ``tests/plugins``: with pytest's default import mode a
``tests/plugins`` package would shadow the real ``plugins`` package.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest

from pipeline.models import Asset, ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import VenueContext
from plugins.sim_venue import SimVenue, SimVenueConfig

ASSETS = {
    a.symbol: a
    for a in (
        Asset(symbol="WETH", address="0x" + "11" * 20, decimals=18, chain_id=1),
        Asset(symbol="USDC", address="0x" + "22" * 20, decimals=6, chain_id=1),
        Asset(symbol="DAI", address="0x" + "33" * 20, decimals=18, chain_id=1),
        Asset(symbol="ARB", address="0x" + "44" * 20, decimals=18, chain_id=42161),
    )
}

POOLS: list[dict[str, Any]] = [
    {
        "pool_id": "weth-usdc",
        "token0": "WETH",
        "token1": "USDC",
        "reserve0": "1000",
        "reserve1": "3000000",
        "fee": 3000,
    },
    {
        "pool_id": "dai-usdc",
        "token0": "DAI",
        "token1": "USDC",
        "reserve0": "5000000",
        "reserve1": "5000000",
        "fee": 100,
    },
]


def sim_config(latency_ms: int = 0, pools: list[dict[str, Any]] | None = None) -> SimVenueConfig:
    return SimVenueConfig.model_validate(
        {"latency_ms": latency_ms, "pools": POOLS if pools is None else pools},
        context={"assets": ASSETS},
    )


class StepFactory(Protocol):
    def __call__(
        self,
        path: str,
        amount: str,
        *,
        mode: SwapMode = ...,
        limit: str | None = ...,
        step_id: str = ...,
        venue: str = ...,
    ) -> ExecutionStep: ...


def _step(
    path: str,
    amount: str,
    *,
    mode: SwapMode = SwapMode.EXACT_IN,
    limit: str | None = None,
    step_id: str = "step-1",
    venue: str = "sim",
) -> ExecutionStep:
    """A step along ``path``, e.g. ``"WETH>weth-usdc>USDC>dai-usdc>DAI"``.

    EXACT_IN spends ``amount`` with ``min_out = limit`` (0 if None); EXACT_OUT receives
    ``amount`` with ``max_in = limit`` (unbounded if None).
    """
    parts = path.split(">")
    tokens, pools = parts[0::2], parts[1::2]
    legs = tuple(
        RouteLeg(
            pool_id=pool,
            venue=venue,
            token_in=tokens[i],
            token_out=tokens[i + 1],
            amount_in=0,
            amount_out=0,
        )
        for i, pool in enumerate(pools)
    )
    value = Decimal(amount)
    if mode is SwapMode.EXACT_IN:
        bound = Decimal(limit or "0")
        return ExecutionStep(
            step_id=step_id,
            venue=venue,
            mode=mode,
            legs=legs,
            asset_in=tokens[0],
            asset_out=tokens[-1],
            amount_in=value,
            min_out=bound,
            amount_out=bound,
            max_in=value,
        )
    bound = Decimal(limit or "1e30")
    return ExecutionStep(
        step_id=step_id,
        venue=venue,
        mode=mode,
        legs=legs,
        asset_in=tokens[0],
        asset_out=tokens[-1],
        amount_in=bound,
        min_out=value,
        amount_out=value,
        max_in=bound,
    )


@pytest.fixture
def make_step() -> StepFactory:
    return _step


@pytest.fixture
def context(tmp_path: Path) -> VenueContext:
    return VenueContext(data_dir=tmp_path / "venues" / "sim", assets=ASSETS)


@pytest.fixture
def assets() -> dict[str, Asset]:
    return dict(ASSETS)


@pytest.fixture
def make_config() -> Callable[..., SimVenueConfig]:
    """``make_config(latency_ms=0, pools=None)``: a validated config (default: ``POOLS``)."""
    return sim_config


@pytest.fixture
async def open_venue(context: VenueContext) -> AsyncIterator[Callable[..., Awaitable[SimVenue]]]:
    """``await open_venue(latency_ms=..., clock_ms=...)``: a started venue, stopped at teardown.

    Several calls on the same context are several processes (or restarts) on one ledger.
    """
    opened: list[SimVenue] = []

    async def _open(latency_ms: int = 0, **kwargs: Any) -> SimVenue:
        venue = SimVenue(sim_config(latency_ms), context, **kwargs)
        await venue.start()
        opened.append(venue)
        return venue

    yield _open
    for venue in opened:
        await venue.stop()
