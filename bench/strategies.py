"""``sep bench strategies``: what a market update costs the strategies, momentum's features and
ONNX inference above all, one update at a time and batched; then the runner's whole pass.

    features      features.features(last 31 closes)                      pure Python
    inference     SignalModel.score([x])  (onnxruntime, one intra-op thread)
    one by one    features + inference for each update in turn            per update
    batched B     B updates' features, then one score(rows) for all B     per update
    runner        StrategyRunnerStage.process of one pool record with dca and momentum
                  enabled (the snapshot, both strategies, intents encoded) per update

Prices are a seeded random walk (the model's own generator, ``momentum.train``).  Ends with
one JSON line ``{"bench": "strategies", ...}`` (microseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

from bench._common import json_line, machine, pct


def _percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    us = [s * 1e6 for s in samples_s]
    return {"p50_us": round(pct(us, 0.5), 2), "p99_us": round(pct(us, 0.99), 2)}


def _time_each(work: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        work(i)
        out.append(time.perf_counter() - start)
    return out


def prices(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    out, p = [], 3000.0
    for _ in range(n):
        p *= 1 + rng.gauss(0, 0.002)
        out.append(p)
    return out


def bench_model(updates: int, batches: Sequence[int], seed: int) -> dict[str, object]:
    from plugins.strategies.momentum.features import BARS_NEEDED, features
    from plugins.strategies.momentum.model import SignalModel

    series = prices(updates + BARS_NEEDED, seed)
    windows = [series[i : i + BARS_NEEDED] for i in range(updates)]
    model = SignalModel()
    model.score([features(windows[0]) or []])  # warm the session up

    rows: list[list[float]] = []

    def feat(i: int) -> None:
        rows.append(features(windows[i]) or [])

    results: dict[str, object] = {"features": _percentiles(_time_each(feat, updates))}
    results["inference"] = _percentiles(_time_each(lambda i: model.score([rows[i]]), updates))
    results["one_by_one"] = _percentiles(
        _time_each(lambda i: model.score([features(windows[i]) or []]), updates)
    )
    for size in batches:
        per_update: list[float] = []
        for start in range(0, updates - size + 1, size):
            t0 = time.perf_counter()
            model.score([features(w) or [] for w in windows[start : start + size]])
            per_update.append((time.perf_counter() - t0) / size)
        results[f"batched_{size}"] = _percentiles(per_update)
    results["model_version"] = model.version
    return results


async def bench_runner(updates: int, seed: int) -> dict[str, float]:
    from pipeline.config import Settings
    from pipeline.market.feed import pool_key, pool_value
    from pipeline.models.market import PoolState
    from pipeline.stages.base import MemoryTable, Output, Record, StageContext
    from pipeline.stages.strategy_runner import StrategyRunnerStage
    from pipeline.topology import Topology, load_topology

    data = load_topology().model_dump(by_alias=True)
    data["plugins"]["strategies"] = {
        "dca": {"config": {"asset": "WETH", "quote": "USDC", "amount": "10", "interval_ms": 1000}},
        "momentum": {"config": {"venue": "sim", "bar_ms": 1000, "cooldown_bars": 0}},
    }
    topology = Topology.model_validate(data)
    series = prices(updates, seed)
    t0 = 1_800_000_000_000
    now = [t0]  # the runner's clock follows the records: none is stale
    with TemporaryDirectory() as tmp:
        context = StageContext(
            topology=topology,
            settings=Settings(data_dir=Path(tmp)),
            table=lambda name, help: MemoryTable(),
            clock=lambda: now[0],
        )
        stage = StrategyRunnerStage(context)
        emitted: list[Output] = []

        async def emit(output: Output) -> None:
            emitted.append(output)

        samples = []
        for i, price in enumerate(series):
            state = PoolState(
                pool_id="sim-weth-usdc-5",
                venue="sim",
                chain_id=31337,
                token0="WETH",
                token1="USDC",
                reserve0=20_000 * 10**18,
                reserve1=int(20_000 * price * 10**6),
                fee=500,
                seq=i,
            )
            record = Record(
                "sep.market.pools", 0, i, t0 + i * 1000, pool_key(state), pool_value(state)
            )
            now[0] = record.timestamp_ms
            start = time.perf_counter()
            await stage.process([record], emit)
            samples.append(time.perf_counter() - start)
        await stage.stop()
    return {**_percentiles(samples[40:]), "intents": float(len(emitted))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sep bench strategies", description=__doc__)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (16, 256)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    batches = args.batch or [16, 256]
    model = bench_model(args.updates, batches, args.seed)
    runner = asyncio.run(bench_runner(min(args.updates, 2000), args.seed))
    print(f"sep bench strategies  ({machine()})")
    print(f"momentum model {model['model_version']}, {args.updates} market updates\n")
    print(f"{'per market update':<34}{'p50 us':>10}{'p99 us':>10}")
    names = ["features", "inference", "one_by_one", *(f"batched_{b}" for b in batches)]
    labels = {
        "features": "features (31 closes -> 6)",
        "inference": "ONNX inference, 1 row",
        "one_by_one": "features + inference, one by one",
    }
    for name in names:
        figures = model[name]
        assert isinstance(figures, dict)
        label = labels.get(name) or f"features + inference, batched {name.split('_')[-1]}"
        print(f"{label:<34}{figures['p50_us']:>10.1f}{figures['p99_us']:>10.1f}")
    print(f"{'runner pass (dca + momentum)':<34}{runner['p50_us']:>10.1f}{runner['p99_us']:>10.1f}")
    print(f"\n(the runner pass emitted {int(runner['intents'])} intents)")
    print(json_line({"bench": "strategies", "machine": machine(), **model, "runner": runner}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
