"""``sep walkforward DATA``: rolling train/test folds, the strategy's parameters chosen on
each train window (grid or seeded random search), judged on the next test window.

    sep walkforward week.jsonl --strategy dca \\
        --config '{"asset": "WETH", "quote": "USDC", "interval_ms": 3600000}' \\
        --grid amount=100,500,1000 --train 24h --test 6h --objective sharpe --workers 2

Prints each fold (the parameters chosen, train and test figures) and the out-of-sample
total; writes ``walkforward.json`` into ``--out``.  See pipeline/backtest/walkforward.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cli.common import (
    UserError,
    add_topology_option,
    examples,
    parse_duration_ms,
    topology_of,
)

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _cmd_walkforward(args: argparse.Namespace) -> int:
    from pipeline.backtest.data import MarketDataError, data_span
    from pipeline.backtest.report import _when
    from pipeline.backtest.walkforward import (
        candidates,
        make_folds,
        overall,
        parse_grid,
        walk_forward,
    )
    from pipeline.cli.backtest import strategy_section

    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)
    if not args.data.is_file():
        raise UserError(f"no data file {args.data}")
    section = strategy_section(args)
    if section is None:
        raise UserError("give the strategy to optimise: --strategy NAME --config JSON")
    ((strategy, use),) = section.items()
    try:
        grid = parse_grid(args.grid)
        span = data_span(args.data)
    except (ValueError, MarketDataError) as exc:
        raise UserError(str(exc)) from exc
    if not grid:
        raise UserError("give at least one --grid key=v1,v2,...")
    if span is None:
        raise UserError(f"{args.data} holds no market event")
    folds = make_folds(span, args.train, args.test)
    if not folds:
        raise UserError(
            f"the data spans {(span[1] - span[0]) / 3_600_000:.1f} h: too short for one "
            f"{args.train / 3_600_000:g} h train and {args.test / 3_600_000:g} h test window"
        )
    space = candidates(grid, args.search, args.samples, args.seed)
    shutil.rmtree(args.out / "work", ignore_errors=True)
    try:
        results = walk_forward(
            args.data, topology_of(args), strategy, use["config"], space, folds,
            objective=args.objective, work=args.out / "work", workers=args.workers,
            seed=args.seed, capital=Decimal(args.capital), period_ms=args.period,
            progress=lambda text: print(text, file=sys.stderr),
        )  # fmt: skip
    except Exception as exc:  # a topology or strategy config error in a worker process
        raise UserError(f"a fold failed: {exc}") from exc

    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{Decimal(str(value)) * 100:8.2f} %"

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{Decimal(str(value)):8.2f}"

    print(f"{'fold':>4}  {'test window (UTC)':33}  {'chosen':44} {'train':>10} {'test':>10} "
          f"{'test Sharpe':>11}")  # fmt: skip
    for r in results:
        window = f"{_when(r.fold.test[0])} -> {_when(r.fold.test[1])[11:]}"
        chosen = json.dumps(r.params, sort_keys=True)
        print(f"{r.fold.index:>4}  {window:33}  {chosen[:44]:44} "
              f"{pct(r.train.get('total_return')):>10} {pct(r.test.get('total_return')):>10} "
              f"{num(r.test.get('sharpe')):>11}")  # fmt: skip
    total = overall(results)
    sharpe = num(total["mean_test_sharpe"]).strip()
    print(f"out of sample: return {pct(total['test_return']).strip()}, mean Sharpe {sharpe}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "walkforward.json").write_text(
        json.dumps(
            {
                "strategy": strategy, "base": use["config"], "grid": grid,
                "objective": args.objective, "search": args.search, "overall": total,
                "folds": [
                    {"index": r.fold.index, "train": r.fold.train, "test": r.fold.test,
                     "params": r.params, "train_metrics": r.train, "test_metrics": r.test,
                     "scores": r.scores}
                    for r in results
                ],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )  # fmt: skip
    print(f"  {args.out / 'walkforward.json'}")
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "walkforward",
        help="walk-forward optimisation of a strategy's parameters over market data",
        description="Rolling train/test folds over a market data file: each candidate "
        "(a grid over the strategy's config keys, or a seeded random sample of it) is "
        "backtested on the train window, the best by --objective on the test window; "
        "backtests run in parallel processes.",
        **examples(
            "sep walkforward week.jsonl --strategy dca --config "
            '\'{"asset": "WETH", "quote": "USDC", "interval_ms": 3600000}\' '
            "--grid amount=100,500,1000 --train 24h --test 6h",
        ),
    )
    p.add_argument("data", type=Path)
    p.add_argument("--strategy", metavar="NAME", help="the strategy plugin")
    p.add_argument("--config", metavar="JSON|FILE", help="its fixed config")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a config key and the values to try (repeat for several keys)",
    )
    p.add_argument("--search", choices=["grid", "random"], default="grid")
    p.add_argument("--samples", type=int, default=10, help="random search: candidates drawn")
    p.add_argument("--train", type=parse_duration_ms, required=True, help="train window")
    p.add_argument("--test", type=parse_duration_ms, required=True, help="test window")
    p.add_argument("--objective", choices=["return", "sharpe", "sortino"], default="sharpe")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--capital", default="100000")
    p.add_argument("--period", type=parse_duration_ms, default=3_600_000)
    p.add_argument("--out", type=Path, default=Path("walkforward-out"))
    add_topology_option(p)
    p.set_defaults(handler=_cmd_walkforward)
