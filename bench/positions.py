"""``sep bench positions``: what a positions refresh costs as a strategy's history grows.

The project stage refreshes a trading strategy's positions every ~250 ms
(``ReadModel.refresh_dirty``).  It used to read and recompute all of the strategy's fills each
time; it now folds the fills added since the last refresh into the strategy's stored ledger
(``pipeline.store.positions.Ledger``).  This measures both, on its own Redis (free port,
temporary directory), for histories of ``--history`` fills with ``--new`` fills added before
each refresh:

* **incremental**: ``refresh_positions`` as the project stage calls it;
* **from all fills**: the same call with the strategy's ledger deleted first, which is what
  every refresh did before (and what a late or changed fill still costs).

For each: milliseconds of this process' CPU and of Redis' CPU per refresh (the medians of
``--rounds``), and the positions are checked equal.  Fills are synthetic (random amounts
between USDC, WETH and WBTC) and written as the apply script writes them (``fills:{s}``,
``fills-new:{s}``, ``fills-version``); the refresh is the real code.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from bench._common import json_line, machine
from pipeline.store.readmodel import ReadModel

STRATEGY = "bench"
ASSETS = ("USDC", "WETH", "WBTC")
REFERENCE = {"USDC": Decimal(1), "WETH": Decimal(3000), "WBTC": Decimal(60000)}
T0 = 1_700_000_000


def _fill(rng: random.Random, n: int) -> tuple[str, bytes]:
    asset_in, asset_out = rng.sample(ASSETS, 2)
    fill = {
        # (time, event id) orders the fills; the time a second apart from the previous one.
        "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(T0 + n)),
        "eventId": f"e{n:09d}",
        "assetIn": asset_in,
        "amountIn": str(Decimal(rng.randint(1, 10**6)) / 1000),
        "assetOut": asset_out,
        "amountOut": str(Decimal(rng.randint(1, 10**6)) / 1000),
    }
    return f"step-{n}", orjson.dumps(fill)


async def _add_fills(model: ReadModel, rng: random.Random, first: int, count: int) -> None:
    """As the apply script adds fills: the hash, the list of new steps, the version."""
    key = model.key
    for start in range(first, first + count, 5000):
        fills = [_fill(rng, n) for n in range(start, min(first + count, start + 5000))]
        pipe = model.redis.pipeline(transaction=False)
        pipe.hset(key(f"fills:{STRATEGY}"), mapping=dict(fills))
        pipe.rpush(key(f"fills-new:{STRATEGY}"), *(step for step, _ in fills))
        pipe.hincrby(key("fills-version"), STRATEGY, 1)
        await pipe.execute()


async def _redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _timed_refresh(model: ReadModel) -> tuple[float, float]:
    """(this process' CPU ms, Redis' CPU ms) of one ``refresh_positions``."""
    redis_before, before = await _redis_cpu(model.redis), time.process_time()
    await model.refresh_positions([STRATEGY])
    ours = (time.process_time() - before) * 1000
    return ours, (await _redis_cpu(model.redis) - redis_before) * 1000


async def _measure(url: str, histories: list[int], new: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for history in histories:
        model = ReadModel.connect(
            url, f"bench-{history}:", quote_asset="USDC", reference_prices=REFERENCE
        )
        rng = random.Random(history)
        try:
            await _add_fills(model, rng, 0, history)
            await model.refresh_positions([STRATEGY])  # the ledger's first computation
            incremental, full = [], []
            for r in range(rounds):
                await _add_fills(model, rng, history + r * new * 2, new)
                incremental.append(await _timed_refresh(model))
                await _add_fills(model, rng, history + r * new * 2 + new, new)
                await model.redis.delete(model.key(f"positions-state:{STRATEGY}"))
                full.append(await _timed_refresh(model))  # (and the ledger is back)
            # The same fills from all of them and folded in: the same positions.
            await _add_fills(model, rng, history + rounds * new * 2, new)
            await model.refresh_positions([STRATEGY])
            folded = await model.redis.hgetall(model.key(f"positions:{STRATEGY}"))
            await model.redis.delete(model.key(f"positions-state:{STRATEGY}"))
            await model.redis.hincrby(model.key("fills-version"), STRATEGY, 1)
            await model.refresh_positions([STRATEGY])
            if folded != await model.redis.hgetall(model.key(f"positions:{STRATEGY}")):
                raise AssertionError(f"history {history}: folded positions differ")
            rows.append(
                {
                    "history": history,
                    "new": new,
                    "incremental_ms": _medians(incremental),
                    "from_all_fills_ms": _medians(full),
                }
            )
        finally:
            keys = [k async for k in model.redis.scan_iter(match=f"bench-{history}:*")]
            if keys:
                await model.redis.delete(*keys)
            await model.close()
    return rows


def _medians(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "python": round(statistics.median(s[0] for s in samples), 3),
        "redis": round(statistics.median(s[1] for s in samples), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench positions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--history",
        type=int,
        nargs="+",
        default=[1000, 10000, 100000],
        help="fills already there (1000 10000 100000)",
    )
    parser.add_argument("--new", type=int, default=20, help="fills added per refresh (20)")
    parser.add_argument("--rounds", type=int, default=7, help="refreshes measured (7)")
    parser.add_argument("--redis", help="an existing Redis URL (default: start one)")
    args = parser.parse_args(argv)
    if args.redis:
        rows = asyncio.run(_measure(args.redis, args.history, args.new, args.rounds))
    else:
        from bench._services import redis_service

        with redis_service() as url:
            rows = asyncio.run(_measure(url, args.history, args.new, args.rounds))
    print(f"sep bench positions — {machine()}; {args.new} new fills per refresh")
    print(
        f"{'history':>10} {'incremental ms: python':>24} {'redis':>7} "
        f"{'from all: python':>18} {'redis':>7}"
    )
    for row in rows:
        inc, full = row["incremental_ms"], row["from_all_fills_ms"]
        print(
            f"{row['history']:>10} {inc['python']:>24} {inc['redis']:>7} "
            f"{full['python']:>18} {full['redis']:>7}"
        )
    print(json_line({"bench": "positions", "machine": machine(), "rows": rows}))
    return 0
