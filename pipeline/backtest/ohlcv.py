"""OHLCV candles (CSV) into the market data format: a pool's states that trace each bar.

CSV: a header row naming at least a time column (``time``, ``timestamp``, ``date``,
``open_time`` or ``datetime``) and ``open``, ``high``, ``low``, ``close`` (any case; other
columns, ``volume`` included, are ignored).  Times are ISO 8601 (UTC when no zone is given),
or epoch seconds or milliseconds (a number above 10^11 is milliseconds).  Prices are the
quote asset per one base asset (for WETH/USDC: USDC per WETH).

Each bar of length ``bar_ms`` (by default the gap between the first two bars) becomes four
pool states, the path a bar most plausibly took: open at its start, then low and high (an up
bar, close >= open) or high and low (a down bar) at a quarter and a half of the bar, and close
at three quarters.  The pool keeps the liquidity it is given (``PoolState``, e.g. from
``topology.yaml``'s sim pool): the candle says where the price went, not how deep the pool
was, so volume is not modelled (a simplification).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pipeline.backtest.data import POOLS_TOPIC, MarketDataError, MarketEvent
from pipeline.backtest.generators import at_price
from pipeline.market.feed import pool_key, pool_value
from pipeline.models.market import PoolState

TIME_COLUMNS = ("time", "timestamp", "date", "open_time", "datetime")


def parse_time_ms(text: str) -> int:
    text = text.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int(number) if number > 10**11 else int(number * 1000)


def read_bars(path: Path) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal]]:
    """(time ms, open, high, low, close) per row, sorted by time."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        names = {name.strip().lower(): name for name in reader.fieldnames or ()}
        time_column = next((names[c] for c in TIME_COLUMNS if c in names), None)
        missing = [c for c in ("open", "high", "low", "close") if c not in names]
        if time_column is None or missing:
            raise MarketDataError(
                path,
                1,
                f"the header needs a time column ({', '.join(TIME_COLUMNS)}) and "
                f"open, high, low, close; missing: {missing or 'time'}",
            )
        bars = []
        for number, row in enumerate(reader, start=2):
            try:
                o, h, lo, c = (Decimal(row[names[k]]) for k in ("open", "high", "low", "close"))
                at = parse_time_ms(row[time_column])
            except (InvalidOperation, ValueError, TypeError) as exc:
                raise MarketDataError(path, number, f"not a bar: {exc}") from exc
            if min(o, h, lo, c) <= 0 or h < max(o, c, lo) or lo > min(o, c):
                raise MarketDataError(path, number, f"inconsistent bar o={o} h={h} l={lo} c={c}")
            bars.append((at, o, h, lo, c))
    bars.sort(key=lambda b: b[0])
    return bars


def import_ohlcv(
    path: Path,
    pool: PoolState,
    decimals: Mapping[str, int],
    *,
    base: str,
    bar_ms: int | None = None,
) -> Iterator[MarketEvent]:
    """``pool``'s states tracing the CSV's bars; ``base`` is the asset prices are quoted for
    (one of the pool's tokens)."""
    if base not in (pool.token0, pool.token1):
        raise ValueError(f"{base} is not a token of pool {pool.pool_id}")
    bars = read_bars(path)
    if not bars:
        return
    if bar_ms is None:
        bar_ms = bars[1][0] - bars[0][0] if len(bars) > 1 else 60_000
    if bar_ms < 4:
        raise MarketDataError(path, 2, "two bars at the same time (or 4 ms apart): give --bar")
    k = Decimal(pool.reserve0) * Decimal(pool.reserve1)
    scale = Decimal(10) ** (decimals[pool.token1] - decimals[pool.token0])
    for at, o, h, lo, c in bars:
        path_prices = (o, lo, h, c) if c >= o else (o, h, lo, c)
        for i, price in enumerate(path_prices):
            # Quote per base, human -> token1 base units per token0 base unit.
            units = price * scale if base == pool.token0 else (1 / price) * scale
            state = at_price(pool, units, k)
            yield MarketEvent(at + i * bar_ms // 4, POOLS_TOPIC, pool_key(state), pool_value(state))
