"""Positions, equity, trades, fees and slippage from an event log, checked by hand.

The market: WETH at 2,000 USDC, then 2,500 an hour later, then 2,000 again.  The account
starts with 10,000 USDC, buys 1 WETH for 2,000 at the start (the plan quoted 1.01 WETH:
0.01 WETH = 20 USDC of slippage; the 0.30 % pool takes 6 USDC of fee) and sells it for 2,500
an hour later.  Hourly equity, marked before each moment's trades: 10,000, then 8,000 cash +
1 WETH at 2,500 = 10,500, then 10,500 cash.  One trade, +500.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson

from pipeline.backtest.analysis import analyse, price_pools
from pipeline.backtest.data import POOLS_TOPIC, MarketEvent, write_market
from pipeline.market.feed import pool_key, pool_value
from pipeline.models.market import PoolState
from pipeline.topology import load_topology

HOUR = 3_600_000
T0 = 1_767_225_600_000
POOL = PoolState(
    pool_id="sim-weth-usdc-30", venue="sim", chain_id=31337, token0="WETH", token1="USDC",
    reserve0=100 * 10**18, reserve1=200_000 * 10**6, fee=3000,
)  # fmt: skip


def at(price: int) -> PoolState:
    return POOL.model_copy(update={"reserve1": 100 * price * 10**6})


def event(topic: str, at_ms: int, payload: dict[str, object], intent: str = "intent-a") -> bytes:
    stamp = f"2026-01-01T{(at_ms - T0) // HOUR:02d}:00:00Z"
    return orjson.dumps(
        {"topic": topic, "timestamp": stamp, "correlationId": intent, "seq": 1, "payload": payload}
    )


def step(step_id: str, asset_in: str, asset_out: str, amount_in: str, amount_out: str,
         leg_in: int) -> dict[str, object]:  # fmt: skip
    return {
        "stepId": step_id, "mode": "EXACT_IN", "assetIn": asset_in, "assetOut": asset_out,
        "amountIn": amount_in, "amountOut": amount_out,
        "legs": [{"poolId": POOL.pool_id, "tokenIn": asset_in, "amountIn": str(leg_in)}],
    }  # fmt: skip


def test_a_round_trip_by_hand(tmp_path: Path) -> None:
    data = tmp_path / "m.jsonl"
    states = [(T0, at(2000)), (T0 + HOUR, at(2500)), (T0 + 2 * HOUR, at(2000))]
    write_market(
        data, {}, [MarketEvent(t, POOLS_TOPIC, pool_key(s), pool_value(s)) for t, s in states]
    )
    buy = step("s1", "USDC", "WETH", "2000", "1.01", 2000 * 10**6)
    sell = step("s2", "WETH", "USDC", "1", "2500", 10**18)
    log = [
        event("intent.submitted", T0, {}),
        event("plan.created", T0, {"plan": {"steps": [buy]}}),
        event(
            "exec.step_filled",
            T0,
            {
                "stepId": "s1",
                "assetIn": "USDC",
                "assetOut": "WETH",
                "amountIn": "2000",
                "amountOut": "1",
            },
        ),
        event("exec.completed", T0, {}),
        event("intent.submitted", T0 + HOUR, {}, "intent-b"),
        event("plan.created", T0 + HOUR, {"plan": {"steps": [sell]}}, "intent-b"),
        event(
            "exec.step_filled",
            T0 + HOUR,
            {
                "stepId": "s2",
                "assetIn": "WETH",
                "assetOut": "USDC",
                "amountIn": "1",
                "amountOut": "2500",
            },
            "intent-b",
        ),
        event("exec.completed", T0 + HOUR, {}, "intent-b"),
    ]
    result = analyse(log, data, load_topology(), capital=Decimal(10_000), period_ms=HOUR)
    m, s = result.metrics, result.series
    assert s.times == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert s.equity == [Decimal(10_000), Decimal(10_500), Decimal(10_500)]
    assert s.exposure == [Decimal(0), Decimal(2500) / Decimal(10_500), Decimal(0)]
    assert m.total_return == Decimal("0.05")
    assert m.trades == 1
    assert m.win_rate == 1
    assert m.profit_factor is None
    assert result.series.trades == [("WETH", T0 + HOUR, Decimal(500), False)]
    assert m.traded_notional == Decimal(4500)
    # Fees: 0.3 % of 2,000 USDC, and of 1 WETH at 2,500.
    assert m.fees == Decimal(6) + Decimal("7.5")
    assert m.slippage_vs_plan == Decimal(20)  # 0.01 WETH short at 2,000; the sale as quoted
    assert (m.intents, m.completed, m.failed, m.fills) == (2, 2, 0, 2)
    assert [(f.side, f.price) for f in s.fills] == [("buy", Decimal(2000)), ("sell", Decimal(2500))]


def test_an_open_lot_is_marked_at_the_last_price(tmp_path: Path) -> None:
    data = tmp_path / "m.jsonl"
    states = [(T0, at(2000)), (T0 + HOUR, at(1500))]
    write_market(
        data, {}, [MarketEvent(t, POOLS_TOPIC, pool_key(s), pool_value(s)) for t, s in states]
    )
    log = [event("exec.step_filled", T0, {"stepId": "x", "assetIn": "USDC", "assetOut": "WETH",
                                          "amountIn": "2000", "amountOut": "1"})]  # fmt: skip
    result = analyse(log, data, load_topology(), capital=Decimal(10_000), period_ms=HOUR)
    assert result.series.trades == [("WETH", T0 + HOUR, Decimal(-500), True)]
    assert result.metrics.win_rate == 0
    assert result.series.equity[-1] == Decimal(9_500)


def test_prices_come_from_the_deepest_pool_against_the_quote() -> None:
    deep = POOL.model_copy(update={"pool_id": "z-deep", "reserve1": 10**15})
    flipped = POOL.model_copy(update={"pool_id": "a", "token0": "USDC", "token1": "WETH",
                                      "reserve0": 10**9, "reserve1": 10**18})  # fmt: skip
    assert price_pools([POOL, deep, flipped], "USDC") == {"WETH": "z-deep"}
