"""``sep backtest DATA``: run a strategy over a market data file through the same stages.

    sep backtest walk.jsonl --strategy dca --config '{"asset": "WETH", "quote": "USDC",
        "amount": "100", "interval_ms": 3600000}'
    sep backtest walk.jsonl                  # the strategies topology.yaml enables
    sep backtest walk.jsonl --store          # also append the events to PostgreSQL

Writes into ``--out`` (default ``backtest-out/``): ``events.jsonl`` (the event log, one event
per line, byte-identical for the same data, topology, settings and seed), ``metrics.json``
and ``report.html`` (self-contained: open it in a browser); prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.cli.common import (
    UserError,
    add_topology_option,
    examples,
    parse_duration_ms,
    topology_of,
)

if TYPE_CHECKING:
    from pipeline.backtest.driver import BacktestResult
    from pipeline.cli.common import SubParsers


class Progress:
    """A progress bar on stderr (only when it is a terminal, or when asked)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        share = min(done / self.total, 1.0)
        bar = "#" * int(share * 30)
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        print(
            f"\r[{bar:<30}] {share:6.1%}  {done:,}/{self.total:,} market events  {rate:,.0f}/s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def end(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def strategy_section(args: argparse.Namespace) -> dict[str, Any] | None:
    """``plugins.strategies`` from ``--strategy`` and ``--config`` (``None``: the topology's)."""
    if args.strategy is None:
        if args.config is not None:
            raise UserError("--config needs --strategy NAME")
        return None
    config: Any = {}
    if args.config is not None:
        text = args.config
        if not text.lstrip().startswith("{") and Path(text).is_file():
            text = Path(text).read_text()
        try:
            config = yaml.safe_load(text)  # JSON is YAML
        except yaml.YAMLError as exc:
            raise UserError(f"--config is neither JSON nor YAML: {exc}") from exc
        if not isinstance(config, dict):
            raise UserError("--config must be a mapping (a JSON object or a YAML file)")
    return {args.strategy: {"config": config}}


async def _store(dsn: str, events: list[bytes]) -> int:
    from pipeline.codec import decode_event
    from pipeline.store.eventstore import EventStore

    store = await EventStore.connect(dsn)
    try:
        stored = 0
        for i in range(0, len(events), 2000):
            stored += await store.append([decode_event(e) for e in events[i : i + 2000]])
        return stored
    finally:
        await store.close()


def _cmd_backtest(args: argparse.Namespace) -> int:
    from pipeline.backtest.analysis import analyse
    from pipeline.backtest.data import MarketDataError, count_events, read_header, read_market
    from pipeline.backtest.driver import Backtest, write_event_log
    from pipeline.backtest.report import html_report, summary_text
    from pipeline.backtest.setup import BacktestSetupError, backtest_topology, data_pools
    from pipeline.cli.stackfile import settings_for_stack
    from pipeline.topology.loader import TopologyError

    # The planner warns when its pending plans outlive a long simulated quiet (an hour
    # between two DCA buys): true, and harmless here, and it would bury the progress bar.
    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)
    data: Path = args.data
    if not data.is_file():
        raise UserError(f"no data file {data} (make one: sep data generate --out {data})")
    try:
        meta = read_header(data)
        pools = data_pools(data)
        total = count_events(data)
        topology = backtest_topology(
            topology_of(args),
            pools,
            strategies=strategy_section(args),
            latency_ms=args.latency_ms,
        )
    except (MarketDataError, BacktestSetupError, TopologyError) as exc:
        raise UserError(str(exc)) from exc
    try:
        capital = Decimal(args.capital)
    except InvalidOperation as exc:
        raise UserError(f"--capital {args.capital!r} is not a number") from exc
    out: Path = args.out
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)  # the sim ledger starts from the data's pools
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(total, enabled=not args.no_progress and sys.stderr.isatty())
    try:
        backtest = Backtest(
            topology,
            read_market(data),
            work,
            seed=args.seed,
            start_ms=0,
            progress=progress,
        )
        result: BacktestResult = asyncio.run(backtest.run())
    except (MarketDataError, TopologyError) as exc:
        raise UserError(str(exc)) from exc
    finally:
        progress.end()
    if result.fatal is not None:
        print(f"sep backtest: a stage failed: {result.fatal!r}", file=sys.stderr)
        return 1
    log_path = out / "events.jsonl"
    write_event_log(log_path, result.events)
    analysis = analyse(
        result.events,
        data,
        topology,
        quote=args.quote,
        capital=capital,
        period_ms=args.period,
    )
    strategies = {
        name: use.config for name, use in topology.plugins.strategies.items() if use.enabled
    }
    header = {
        "data": str(data),
        "data source": json.dumps(meta, sort_keys=True)[:300],
        "strategies": json.dumps(strategies, sort_keys=True, default=str),
        "seed": str(args.seed),
        "market events": f"{result.market_events:,}",
        "simulated span": _span(result.first_ms, result.last_ms),
        "run time": f"{result.seconds:.2f} s "
        f"({result.market_events / max(result.seconds, 1e-9):,.0f} market events/s)",
    }
    metrics = analysis.metrics.to_json()
    (out / "metrics.json").write_text(
        json.dumps({"metrics": metrics, "run": header, "events": result.counts}, indent=2) + "\n"
    )
    (out / "report.html").write_text(html_report(analysis, header))
    print(summary_text(analysis.metrics, list(header.items())))
    print(
        f"\n  event log  {log_path}\n  metrics    {out / 'metrics.json'}"
        f"\n  report     {out / 'report.html'}"
    )
    if args.store:
        settings = settings_for_stack()
        stored = asyncio.run(_store(settings.postgres, result.events))
        print(f"  stored {stored:,} new events in PostgreSQL ({len(result.events):,} in the log)")
    return 0


def _span(first: int | None, last: int | None) -> str:
    if first is None or last is None:
        return "no market events"
    from pipeline.backtest.report import _when

    return f"{_when(first)} -> {_when(last)} UTC ({(last - first) / 3_600_000:,.1f} h)"


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "backtest",
        help="run a strategy over market data through the same stages, in memory",
        description="Run the topology's stages in memory over a market data file on a "
        "simulated clock (the data's event time), with the sim venue trading the data's "
        "pools, and report. Deterministic: the same data, topology, settings and seed "
        "give the same event log, byte for byte.",
        **examples(
            "sep data generate --model pump_dump --seed 7 --out pump.jsonl",
            "sep backtest pump.jsonl --strategy dca --config "
            '\'{"asset": "WETH", "quote": "USDC", "amount": "100", '
            '"interval_ms": 3600000}\'',
            "sep backtest recorded.jsonl --latency-ms 2000 --out runs/latency",
        ),
    )
    p.add_argument("data", type=Path, help="a market data file (docs/backtest.md: the format)")
    p.add_argument(
        "--strategy",
        metavar="NAME",
        help="the strategy plugin to run (default: the ones topology.yaml enables)",
    )
    p.add_argument("--config", metavar="JSON|FILE", help="its config (JSON, or a YAML/JSON file)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (order ids; default 0)")
    p.add_argument(
        "--latency-ms",
        type=int,
        default=None,
        help="the sim venue's latency (default: topology.yaml's)",
    )
    p.add_argument("--capital", default="100000", help="starting cash in the quote asset")
    p.add_argument("--quote", default=None, help="the quote asset (default: risk.quote_asset)")
    p.add_argument(
        "--period",
        type=parse_duration_ms,
        default=3_600_000,
        help="equity sampling period for the metrics (default 1h)",
    )
    p.add_argument("--out", type=Path, default=Path("backtest-out"), help="output directory")
    p.add_argument(
        "--store", action="store_true", help="also append the events to PostgreSQL ($SEP_POSTGRES)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_topology_option(p)
    p.set_defaults(handler=_cmd_backtest)
