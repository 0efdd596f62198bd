"""OHLCV candles as pool states: four per bar along the bar's likely path, at the pool's
liquidity, whichever token of the pool the prices are quoted for."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.backtest.data import MarketDataError
from pipeline.backtest.ohlcv import import_ohlcv, parse_time_ms
from pipeline.models.market import PoolState

DECIMALS = {"WETH": 18, "USDC": 6}
POOL = PoolState(
    pool_id="p", venue="sim", chain_id=1, token0="WETH", token1="USDC",
    reserve0=1_000 * 10**18, reserve1=3_000_000 * 10**6, fee=500,
)  # fmt: skip
CSV = """Timestamp,Open,High,Low,Close,Volume
2026-01-01T00:00:00Z,3000,3100,2950,3050,12.5
2026-01-01T01:00:00Z,3050,3060,2900,2920,20
"""


def human_price(state: PoolState, base: str = "WETH") -> Decimal:
    weth, usdc = (
        (state.reserve0, state.reserve1)
        if state.token0 == "WETH"
        else (state.reserve1, state.reserve0)
    )
    return (Decimal(usdc) / 10**6) / (Decimal(weth) / 10**18)


@pytest.mark.parametrize("flipped", [False, True], ids=["weth-usdc", "usdc-weth"])
def test_each_bar_is_four_states_along_its_path(tmp_path: Path, flipped: bool) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(CSV)
    pool = POOL
    if flipped:
        flip = {"token0": "USDC", "token1": "WETH", "reserve0": POOL.reserve1}
        pool = POOL.model_copy(update={**flip, "reserve1": POOL.reserve0})
    events = list(import_ohlcv(path, pool, DECIMALS, base="WETH"))
    start = parse_time_ms("2026-01-01T00:00:00Z")
    quarter = 15 * 60_000
    assert [e.at_ms for e in events] == [start + i * quarter for i in range(8)]
    states = [PoolState.model_validate_json(e.value) for e in events]
    got = [human_price(s) for s in states]
    # Up bar: open, low, high, close; down bar: open, high, low, close.
    expected = [3000, 2950, 3100, 3050, 3050, 3060, 2900, 2920]
    assert all(abs(g / e - 1) < Decimal("1e-9") for g, e in zip(got, expected, strict=True))
    k = Decimal(pool.reserve0) * pool.reserve1
    assert all(abs(Decimal(s.reserve0) * s.reserve1 / k - 1) < Decimal("1e-9") for s in states)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1767225600", 1767225600000), ("1767225600000", 1767225600000),
     ("2026-01-01 00:00:00", 1767225600000), ("2026-01-01T01:00:00+01:00", 1767225600000)],
)  # fmt: skip
def test_times_in_seconds_milliseconds_or_iso(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("when,open,high,low,close\n", "time column"),
        ("time,open,high,low,close\n1,10,9,8,9\n", "inconsistent bar"),
        ("time,open,high,low,close\n1,x,9,8,9\n", "not a bar"),
    ],
)
def test_bad_csv_says_why(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(MarketDataError, match=message):
        list(import_ohlcv(path, POOL, DECIMALS, base="WETH"))
