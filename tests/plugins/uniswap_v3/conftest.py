"""Fixtures for the uniswap_v3 venue tests: venues on the session's real dev chain.

Every test gets venues with their own data directory (their own journal); they share the
chain, the deployment and (by default) the trader account, so tests assert on changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.devstack.uniswap import DevChain
from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import VenueContext
from plugins.uniswap_v3 import UniswapV3Config, UniswapV3Venue

VenueFactory = Callable[..., Awaitable[UniswapV3Venue]]


@pytest.fixture
async def make_venue(chain: DevChain, tmp_path: Path) -> AsyncIterator[VenueFactory]:
    """``await make_venue(name="a", **config)``: a started venue; stopped after the test."""
    started: list[UniswapV3Venue] = []

    async def make(name: str = "venue", **config: Any) -> UniswapV3Venue:
        settings = {"rpc_url": chain.rpc_url, "deployment_file": chain.deployment_path}
        venue = UniswapV3Venue(
            UniswapV3Config(**(settings | config)), VenueContext(tmp_path / name, {})
        )
        await venue.start()
        started.append(venue)
        return venue

    yield make
    for venue in started:
        await venue.stop()


@pytest.fixture
async def venue(make_venue: VenueFactory) -> UniswapV3Venue:
    return await make_venue()


StepFactory = Callable[..., ExecutionStep]


@pytest.fixture
def make_step() -> StepFactory:
    return step


def step(
    step_id: str,
    route: str,
    amount: str,
    *,
    mode: SwapMode = SwapMode.EXACT_IN,
    limit: str | None = None,
) -> ExecutionStep:
    """A step along ``route`` like "WBTC>WBTC-WETH-3000>WETH>WETH-USDC-500>USDC".

    EXACT_IN: spend ``amount``, ``limit`` is min_out (default 0). EXACT_OUT: receive
    ``amount``, ``limit`` is max_in (default a lot).
    """
    parts = route.split(">")
    tokens, pools = parts[::2], parts[1::2]
    legs = tuple(
        RouteLeg(pool_id=p, venue="uniswap_v3", token_in=a, token_out=b, amount_in=0, amount_out=0)
        for p, a, b in zip(pools, tokens, tokens[1:], strict=False)
    )
    value = Decimal(amount)
    if mode is SwapMode.EXACT_IN:
        bound = Decimal(limit or 0)
        return ExecutionStep(
            step_id=step_id,
            venue="uniswap_v3",
            mode=mode,
            legs=legs,
            asset_in=tokens[0],
            asset_out=tokens[-1],
            amount_in=value,
            min_out=bound,
            amount_out=bound,
            max_in=value,
        )
    bound = Decimal(limit or 10**12)
    return ExecutionStep(
        step_id=step_id,
        venue="uniswap_v3",
        mode=mode,
        legs=legs,
        asset_in=tokens[0],
        asset_out=tokens[-1],
        amount_in=bound,
        min_out=value,
        amount_out=value,
        max_in=bound,
    )
