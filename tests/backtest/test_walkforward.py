"""Walk-forward on generated data whose best parameter is known: in a steady uptrend every
DCA buy gains, so the largest amount wins each train window; in a steady downtrend every buy
loses, so the smallest does.  Folds, grids and the choice's tie rule, as pure functions."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.backtest.data import write_market
from pipeline.backtest.generators import GeneratorConfig, generate
from pipeline.backtest.walkforward import (
    Fold,
    best_of,
    candidates,
    make_folds,
    overall,
    parse_grid,
    walk_forward,
)
from pipeline.models.market import PoolState
from pipeline.topology import load_topology

HOUR = 3_600_000
START = 1_767_225_600_000
POOL = PoolState(
    pool_id="sim-weth-usdc-5", venue="sim", chain_id=31337, token0="WETH", token1="USDC",
    reserve0=20_000 * 10**18, reserve1=60_000_000 * 10**6, fee=500,
)  # fmt: skip


@pytest.fixture(autouse=True)
def quiet() -> None:
    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)


def trend(tmp_path: Path, drift: str) -> Path:
    path = tmp_path / f"trend{drift}.jsonl"
    config = GeneratorConfig(
        seed=1, steps=36 * 12, step_ms=300_000, drift=Decimal(drift), vol=Decimal(0),
        start_ms=START,
    )  # fmt: skip
    write_market(path, {}, generate(config, [POOL]))
    return path


@pytest.mark.parametrize(("drift", "best"), [("0.001", 1000), ("-0.001", 10)])
def test_the_known_best_amount_is_found_in_every_fold(
    tmp_path: Path, drift: str, best: int
) -> None:
    data = trend(tmp_path, drift)
    folds = make_folds((START, START + 36 * HOUR - 1), 12 * HOUR, 6 * HOUR)
    assert len(folds) == 4
    space = candidates(parse_grid(["amount=10,100,1000"]))
    results = walk_forward(
        data, load_topology(), "dca",
        {"asset": "WETH", "quote": "USDC", "interval_ms": HOUR, "start_ms": START},
        space, folds, objective="return", work=tmp_path / "work", workers=2,
        capital=Decimal(50_000),
    )  # fmt: skip
    assert [r.params for r in results] == [{"amount": best}] * 4
    for r in results:
        assert r.test["intents"] == 6  # one buy an hour, six hours
        won = Decimal(r.test["total_return"])
        assert won > 0 if best == 1000 else won < 0
    total = Decimal(str(overall(results)["test_return"]))
    assert total > 0 if best == 1000 else total < 0


def test_folds_roll_by_one_test_window() -> None:
    assert make_folds((0, 99), 50, 20) == [Fold(0, (0, 50), (50, 70)), Fold(1, (20, 70), (70, 90))]
    assert make_folds((0, 99), 80, 30) == []


def test_grid_and_random_search() -> None:
    grid = parse_grid(["a=1,2", "b=x,y,z"])
    assert grid == {"a": [1, 2], "b": ["x", "y", "z"]}
    every = candidates(grid)
    assert every[:2] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}]
    assert len(every) == 6
    drawn = candidates(grid, "random", samples=3, seed=4)
    assert len(drawn) == 3
    assert drawn == candidates(grid, "random", samples=3, seed=4)
    assert all(d in every for d in drawn)
    with pytest.raises(ValueError, match="key=v1"):
        parse_grid(["a"])


def test_the_best_score_wins_undefined_last_first_of_equals() -> None:
    assert best_of([Decimal(1), None, Decimal(3), Decimal(3)]) == 2
    assert best_of([None, Decimal(-1)]) == 1
    assert best_of([None, None]) == 0
