"""Walk-forward optimisation: parameters chosen on each train window, judged on the next.

    data span --rolling folds--> [train_0 | test_0] [train_1 | test_1] ...   (each fold moves
                                 on by one test window; test windows do not overlap)
    each fold: every candidate (a grid over the strategy's config keys, or a seeded random
               sample of it) backtested on the train window --objective--> the best
               --> that one backtested on the test window --> the fold's out-of-sample figures
    overall:   test returns compounded, test Sharpe averaged, the parameters each fold chose

Every backtest is a separate run over its window alone (pools seeded at the window's first
states, a fresh sim ledger), run in parallel processes (``workers``).  Objectives: ``return``
(total return), ``sharpe``, ``sortino``; an undefined figure ranks last, ties go to the
earlier candidate (grid order), so the choice is deterministic.  Optuna is not a dependency
(simplification: grid and random search only).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.backtest.analysis import analyse
from pipeline.backtest.data import read_market
from pipeline.backtest.driver import Backtest
from pipeline.backtest.setup import backtest_topology, first_pool_states
from pipeline.topology.models import Topology

Objective = Literal["return", "sharpe", "sortino"]
OBJECTIVE_FIELDS: Mapping[str, str] = {
    "return": "total_return",
    "sharpe": "sharpe",
    "sortino": "sortino",
}


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[int, int]
    """``[start, end)`` in ms."""
    test: tuple[int, int]


def make_folds(span: tuple[int, int], train_ms: int, test_ms: int) -> list[Fold]:
    """Rolling folds over ``span`` (first and last event time, inclusive)."""
    if train_ms <= 0 or test_ms <= 0:
        raise ValueError("train and test windows must be positive")
    folds: list[Fold] = []
    start = span[0]
    while start + train_ms + test_ms <= span[1] + 1:
        middle = start + train_ms
        folds.append(Fold(len(folds), (start, middle), (middle, middle + test_ms)))
        start += test_ms
    return folds


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["amount=10,100,1000", "interval_ms=60000,3600000"]`` -> values per key (YAML
    scalars, so numbers stay numbers and strings stay strings)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"{item!r}: expected key=v1,v2,...")
        grid[key] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def candidates(
    grid: Mapping[str, Sequence[Any]],
    search: Literal["grid", "random"] = "grid",
    samples: int = 10,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every combination (grid order: the last key varies fastest), or ``samples`` of them
    drawn with ``seed`` (kept in grid order)."""
    keys = list(grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    if search == "random" and samples < len(combos):
        chosen = sorted(random.Random(seed).sample(range(len(combos)), samples))
        combos = [combos[i] for i in chosen]
    return combos


@dataclass(frozen=True)
class Job:
    """One backtest of a window, run in a worker process (plain data: it is pickled)."""

    data: str
    topology: dict[str, Any]
    strategy: str
    config: dict[str, Any]
    window: tuple[int, int]
    work: str
    seed: int
    capital: str
    period_ms: int


def run_job(job: Job) -> dict[str, Any]:
    """The window's metrics (``Metrics.to_json``)."""
    data = Path(job.data)
    events = [e for e in read_market(data) if job.window[0] <= e.at_ms < job.window[1]]
    topology = backtest_topology(
        Topology.model_validate(job.topology),
        first_pool_states(events),
        strategies={job.strategy: {"config": job.config}},
    )
    work = Path(job.work)
    shutil.rmtree(work, ignore_errors=True)
    result = asyncio.run(Backtest(topology, events, work, seed=job.seed).run())
    if result.fatal is not None:
        raise RuntimeError(f"{job.strategy} {job.config} in {job.window}: {result.fatal!r}")
    analysis = analyse(
        result.events,
        data,
        topology,
        capital=Decimal(job.capital),
        period_ms=job.period_ms,
        window=job.window,
    )
    return analysis.metrics.to_json()


def score(metrics: Mapping[str, Any], objective: Objective) -> Decimal | None:
    value = metrics.get(OBJECTIVE_FIELDS[objective])
    return None if value is None else Decimal(str(value))


def best_of(scores: Sequence[Decimal | None]) -> int:
    """The index of the highest score (``None`` last; the first of equals)."""
    best = 0
    for i, s in enumerate(scores):
        current = scores[best]
        if s is not None and (current is None or s > current):
            best = i
    return best


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    params: dict[str, Any]
    train: dict[str, Any]
    """The chosen candidate's train metrics."""
    test: dict[str, Any]
    scores: list[str | None]
    """Every candidate's train score, in candidate order."""


def walk_forward(
    data: Path,
    topology: Topology,
    strategy: str,
    base: Mapping[str, Any],
    space: Sequence[Mapping[str, Any]],
    folds: Sequence[Fold],
    *,
    objective: Objective = "return",
    work: Path,
    workers: int = 2,
    seed: int = 0,
    capital: Decimal = Decimal(100_000),
    period_ms: int = 3_600_000,
    progress: Callable[[str], None] | None = None,
) -> list[FoldResult]:
    topology_data = topology.model_dump(by_alias=True, mode="json")

    def job(config: Mapping[str, Any], window: tuple[int, int], where: str) -> Job:
        return Job(
            str(data), topology_data, strategy, {**base, **config}, window,
            str(work / where), seed, str(capital), period_ms,
        )  # fmt: skip

    def run_all(jobs: list[Job]) -> list[dict[str, Any]]:
        if workers <= 1:
            return [run_job(j) for j in jobs]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(run_job, jobs))

    train_jobs = [
        job(params, fold.train, f"fold-{fold.index}/train-{i}")
        for fold in folds
        for i, params in enumerate(space)
    ]
    if progress is not None:
        progress(f"{len(train_jobs)} train runs ({len(folds)} folds x {len(space)} candidates)")
    trained = run_all(train_jobs)
    chosen: list[tuple[int, list[Decimal | None]]] = []
    for f in range(len(folds)):
        results = trained[f * len(space) : (f + 1) * len(space)]
        scores = [score(m, objective) for m in results]
        chosen.append((best_of(scores), scores))
    if progress is not None:
        progress(f"{len(folds)} test runs")
    tested = run_all(
        [
            job(space[best], fold.test, f"fold-{fold.index}/test")
            for fold, (best, _) in zip(folds, chosen, strict=True)
        ]
    )
    return [
        FoldResult(
            fold,
            dict(space[best]),
            trained[fold.index * len(space) + best],
            test,
            [None if s is None else str(s) for s in scores],
        )
        for fold, (best, scores), test in zip(folds, chosen, tested, strict=True)
    ]


def overall(results: Sequence[FoldResult]) -> dict[str, str | None]:
    """Out of sample: the test returns compounded, the test Sharpe ratios averaged."""
    growth = Decimal(1)
    sharpes: list[Decimal] = []
    for r in results:
        ret = r.test.get("total_return")
        growth *= 1 + Decimal(str(ret)) if ret is not None else Decimal(1)
        if r.test.get("sharpe") is not None:
            sharpes.append(Decimal(str(r.test["sharpe"])))
    mean_sharpe = sum(sharpes, Decimal(0)) / len(sharpes) if sharpes else None
    return {
        "test_return": format((growth - 1).quantize(Decimal("1e-10")), "f"),
        "mean_test_sharpe": None
        if mean_sharpe is None
        else format(mean_sharpe.quantize(Decimal("1e-10")), "f"),
    }
