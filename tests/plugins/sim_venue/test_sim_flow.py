"""The rest of the market on the sim venue: seeded trades on a schedule, made once per tick
however many workers ask, that move the pools' prices in trends."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.models import Asset
from pipeline.models.market import PoolState
from pipeline.plugins.venue import VenueContext
from plugins.sim_venue import SimVenue, SimVenueConfig
from plugins.sim_venue.amm import Pool
from plugins.sim_venue.flow import MarketFlow, flow_trade, regime, step_bps
from plugins.sim_venue.market import SimPoolTicker

EVERY = 1_000
T0 = 1_800_000_000_000
ASSETS = {
    "WETH": Asset(symbol="WETH", address="0x" + "11" * 20, decimals=18, chain_id=1),
    "USDC": Asset(symbol="USDC", address="0x" + "22" * 20, decimals=6, chain_id=1),
}
POOLS: list[dict[str, Any]] = [
    {
        "pool_id": pool_id,
        "token0": "WETH",
        "token1": "USDC",
        "reserve0": str(weth),
        "reserve1": str(weth * 3000),
        "fee": 3000,
    }
    for pool_id, weth in (("weth-usdc", 1000), ("weth-usdc-deep", 10_000))
]


def flow_config(**flow: Any) -> SimVenueConfig:
    return SimVenueConfig.model_validate(
        {"pools": POOLS, "flow": {"every_ms": EVERY, **flow}}, context={"assets": ASSETS}
    )


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def venue(path: Path, config: SimVenueConfig, clock: Clock) -> SimVenue:
    return SimVenue(config, VenueContext(data_dir=path, assets=ASSETS), clock_ms=clock)


def weth_price(pools: list[PoolState]) -> float:
    (pool,) = [p for p in pools if p.pool_id == "weth-usdc"]
    return (pool.reserve1 / 1e6) / (pool.reserve0 / 1e18)


def test_a_trade_is_a_function_of_seed_pool_and_tick() -> None:
    flow = MarketFlow(seed=7)
    pool = Pool("weth-usdc", "WETH", "USDC", 1000 * 10**18, 3_000_000 * 10**6, 3000)
    assert flow_trade(flow, pool, 42) == flow_trade(flow, pool, 42)
    assert flow_trade(MarketFlow(seed=8), pool, 42) != flow_trade(flow, pool, 42)
    up = next(t for t in range(10_000) if step_bps(flow, pool.pool_id, t) > 0)
    trade = flow_trade(flow, pool, up)
    assert trade is not None
    assert (trade.token_in, trade.token_out) == ("USDC", "WETH")
    # Sized to move the mid price by the step (before the fee): token1 * (e^(s/2) - 1).
    step = step_bps(flow, pool.pool_id, up) / 10_000
    assert trade.amount_in == int(pool.reserve1 * math.expm1(step / 2))


def test_regimes_trend_up_down_and_flat_in_blocks() -> None:
    flow = MarketFlow(regime_ticks=50, vol_bps=0.0, trend_bps=10.0)
    blocks = {regime(flow, "p", block * 50) for block in range(60)}
    assert blocks == {1, -1, 0}
    assert {regime(flow, "p", t) for t in range(100, 150)} == {regime(flow, "p", 100)}
    assert {step_bps(flow, "p", t) for t in range(100, 150)} == {10.0 * regime(flow, "p", 100)}


async def test_two_workers_trade_each_tick_once_and_the_price_walks(tmp_path: Path) -> None:
    trend = {"vol_bps": 0.0, "trend_bps": 20.0, "regime_ticks": 10}
    # A seed whose block of ten ticks from T0 trends (a flat one, without noise, is quiet).
    seed = next(
        s for s in range(50) if regime(MarketFlow(seed=s, **trend), "weth-usdc", T0 // EVERY)
    )
    config = flow_config(pools=["weth-usdc"], seed=seed, **trend)
    assert config.flow is not None
    sign = regime(config.flow, "weth-usdc", T0 // EVERY)
    clock = Clock()
    first, second = venue(tmp_path, config, clock), venue(tmp_path, config, clock)
    await first.start()
    await second.start()
    try:
        prices = [weth_price(await first.pools())]
        for tick in range(10):
            clock.now = T0 + tick * EVERY + 1
            made = await first.trade_flow()
            assert made == [f"flow-weth-usdc-{T0 // EVERY + tick}"]
            assert await second.trade_flow() == made  # the same tick's trade: not made again
            prices.append(weth_price(await second.pools()))
        assert first.total_fills() == 10  # one per tick, not one per worker
        assert set(first.fill_counts().values()) == {1}
    finally:
        await first.stop()
        await second.stop()
    # 20 bps of log price a tick, in the regime's direction (the fee stays in the pool,
    # nudging the price a little further).
    moves = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    assert all(m * sign == pytest.approx(0.002, rel=0.01) for m in moves), moves


async def test_the_ticker_trades_before_it_publishes(tmp_path: Path) -> None:
    config = flow_config(pools=["weth-usdc"], vol_bps=50.0)
    clock = Clock()
    sim = venue(tmp_path, config, clock)
    await sim.start()
    ticker = SimPoolTicker(sim, 0.001)
    try:
        before = weth_price(await sim.pools())
        updates = ticker.updates()
        published = await anext(updates)
        assert weth_price(published) != before
        assert sim.total_fills() == 1
    finally:
        ticker.close()
        await sim.stop()


async def test_without_flow_nothing_trades(tmp_path: Path) -> None:
    sim = venue(
        tmp_path,
        SimVenueConfig.model_validate({"pools": POOLS}, context={"assets": ASSETS}),
        Clock(),
    )
    await sim.start()
    try:
        assert await sim.trade_flow() == []
        assert sim.total_fills() == 0
    finally:
        await sim.stop()


def test_flow_pools_must_be_the_venues() -> None:
    with pytest.raises(ValidationError, match=r"flow\.pools names no pool"):
        flow_config(pools=["nope"])
