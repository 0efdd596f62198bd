"""``sep bench chain``: the uniswap_v3 venue's latency on a local anvil with real Uniswap V3.

Starts anvil (or uses ``SEP_RPC``), deploys and seeds the contracts (timed), then measures
through the venue, next to the node's bare round trip (``eth_blockNumber``):

    rpc        eth_blockNumber over bare HTTP and through web3 (the floor of every figure)
    quote      QuoterV2, single hop and two hops
    pools      every pool's slot0, liquidity and ticks (what the market source reads)
    swap       submit (allowance cached, block, estimate, sign, journal, send) + receipt
    burst      N swaps submitted at once, then all receipts: swaps per second

Swaps alternate direction so the price stays where it was. Prints a table, the machine,
and last a JSON line ``{"bench": "chain", ...}``. The default run takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import json_line, machine, pct
from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import VenueContext
from plugins.uniswap_v3 import UniswapV3Config, UniswapV3Venue


def _step(step_id: str, route: str, amount: str) -> ExecutionStep:
    """An EXACT_IN step along "A>POOL>B[>POOL>C]" with no slippage floor."""
    parts = route.split(">")
    tokens, pools = parts[::2], parts[1::2]
    legs = tuple(
        RouteLeg(pool_id=p, venue="uniswap_v3", token_in=a, token_out=b, amount_in=0, amount_out=0)
        for p, a, b in zip(pools, tokens, tokens[1:], strict=False)
    )
    value = Decimal(amount)
    return ExecutionStep(
        step_id=step_id,
        venue="uniswap_v3",
        mode=SwapMode.EXACT_IN,
        legs=legs,
        asset_in=tokens[0],
        asset_out=tokens[-1],
        amount_in=value,
        min_out=Decimal(0),
        amount_out=Decimal(0),
        max_in=value,
    )


async def _timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Milliseconds of ``n`` sequential runs of ``op(i)`` (after 5 unmeasured warm-ups)."""
    for i in range(5):
        await op(-1 - i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        await op(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(pct(samples, 0.5), 3),
        "p99_ms": round(pct(samples, 0.99), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


async def _run(
    rpc_url: str, deployment: Path, data_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    venue = UniswapV3Venue(
        UniswapV3Config(rpc_url=rpc_url, deployment_file=deployment), VenueContext(data_dir, {})
    )
    await venue.start()
    figures: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}

            async def bare(_: int) -> None:
                async with http.post(rpc_url, json=body) as response:
                    await response.read()

            figures["rpc_bare_http"] = _stats(await _timed(args.rtt, bare))

        async def web3_rtt(_: int) -> None:
            await venue.w3.eth.block_number

        figures["rpc_web3"] = _stats(await _timed(args.rtt, web3_rtt))
        single = _step("q1", "WETH>WETH-USDC-500>USDC", "1")
        double = _step("q2", "WBTC>WBTC-WETH-3000>WETH>WETH-USDC-500>USDC", "0.05")

        async def quote_single(_: int) -> None:
            await venue.quote(single)

        async def quote_double(_: int) -> None:
            await venue.quote(double)

        async def pools(_: int) -> None:
            await venue.pools()

        figures["quote_1hop"] = _stats(await _timed(args.quotes, quote_single))
        figures["quote_2hop"] = _stats(await _timed(args.quotes, quote_double))
        figures["pools_all"] = _stats(await _timed(max(args.quotes // 5, 10), pools))

        submit_ms: list[float] = []
        receipt_ms: list[float] = []

        async def swap(i: int) -> None:
            # Alternate direction: sell 1 WETH, then sell about what it fetched.
            step = (
                _step(f"sw-{i}", "WETH>WETH-USDC-500>USDC", "1")
                if i % 2 == 0
                else _step(f"sw-{i}", "USDC>WETH-USDC-500>WETH", "2998")
            )
            started = time.perf_counter()
            submission = await venue.submit(step)
            sent = time.perf_counter()
            await venue.wait_receipt(submission, 30)
            if i >= 0:
                submit_ms.append((sent - started) * 1000)
                receipt_ms.append((time.perf_counter() - sent) * 1000)

        figures["swap_to_receipt"] = _stats(await _timed(args.swaps, swap))
        figures["swap_submit"] = _stats(submit_ms)
        figures["swap_receipt_wait"] = _stats(receipt_ms)

        started = time.perf_counter()
        steps = [
            _step(
                f"burst-{i}",
                "WETH>WETH-USDC-500>USDC" if i % 2 == 0 else "USDC>WETH-USDC-500>WETH",
                "1" if i % 2 == 0 else "2998",
            )
            for i in range(args.burst)
        ]
        submissions = await asyncio.gather(*(venue.submit(s) for s in steps))
        await asyncio.gather(*(venue.wait_receipt(s, 60) for s in submissions))
        elapsed = time.perf_counter() - started
        figures["burst"] = {
            "swaps": args.burst,
            "seconds": round(elapsed, 3),
            "swaps_per_s": round(args.burst / elapsed, 1),
        }
    finally:
        await venue.stop()
    return figures


def _print(figures: dict[str, Any]) -> None:
    print(f"{'operation':<22}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, row in figures.items():
        if isinstance(row, dict) and "p50_ms" in row:
            print(
                f"{name:<22}{row['n']:>6}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
                f"{row['mean_ms']:>10.2f}"
            )
    burst = figures["burst"]
    print(
        f"burst: {burst['swaps']} concurrent swaps in {burst['seconds']:.2f}s "
        f"({burst['swaps_per_s']} swaps/s)"
    )
    deploy = figures["deploy_s"]
    print(
        f"deploy + seed: {'n/a (SEP_RPC)' if deploy is None else f'{deploy:.2f}s'}   "
        f"machine: {machine()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench chain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rtt", type=int, default=500, help="eth_blockNumber calls")
    parser.add_argument("--quotes", type=int, default=200, help="quotes per route")
    parser.add_argument("--swaps", type=int, default=200, help="sequential swaps")
    parser.add_argument("--burst", type=int, default=50, help="concurrent swaps")
    args = parser.parse_args(argv)

    from pipeline.devstack.uniswap import connect, deploy, dev_chain

    with tempfile.TemporaryDirectory(prefix="sep-bench-chain-") as tmp:
        root = Path(tmp)
        with dev_chain(root / "chain", progress=lambda line: print(line, file=sys.stderr)) as c:
            deploy_s: float | None = None
            if not os.environ.get("SEP_RPC"):  # our own node: time a second, fresh deploy
                started = time.perf_counter()
                deploy(connect(c.rpc_url))
                deploy_s = round(time.perf_counter() - started, 3)
            figures = asyncio.run(_run(c.rpc_url, c.deployment_path, root / "venue", args))
    figures["deploy_s"] = deploy_s
    _print(figures)
    print(json_line({"bench": "chain", "machine": machine(), **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
