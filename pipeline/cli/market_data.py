"""``sep data`` (generate, import-ohlcv) and ``sep record``: market data files for backtests.

    sep data generate --model pump_dump --seed 7 --steps 2880 --out pump.jsonl
    sep data import-ohlcv eth.csv --pool sim-weth-usdc-5 --out eth.jsonl
    sep record --seconds 600 --out live.jsonl      # while `sep up` runs

The format is in ``pipeline/backtest/data.py`` and docs/backtest.md.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli.common import (
    UserError,
    add_topology_option,
    examples,
    parse_duration_ms,
    topology_of,
)

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc


def _pools(args: argparse.Namespace) -> list:  # type: ignore[type-arg]
    from pipeline.backtest.setup import BacktestSetupError, topology_pools

    try:
        pools = topology_pools(topology_of(args))
    except BacktestSetupError as exc:
        raise UserError(str(exc)) from exc
    wanted = args.pool or [p.pool_id for p in pools]
    chosen = [p for p in pools if p.pool_id in wanted]
    unknown = sorted(set(wanted) - {p.pool_id for p in chosen})
    if unknown:
        raise UserError(
            f"no sim pool {unknown} in topology.yaml; it has {[p.pool_id for p in pools]}"
        )
    return chosen


def _cmd_generate(args: argparse.Namespace) -> int:
    from pipeline.backtest.data import write_market
    from pipeline.backtest.generators import GeneratorConfig, generate

    config = GeneratorConfig(
        model=args.model,
        seed=args.seed,
        start_ms=args.start_ms,
        step_ms=args.step,
        steps=args.steps,
        drift=args.drift,
        vol=args.vol,
    )
    count = write_market(args.out, config.meta(), generate(config, _pools(args)))
    print(f"wrote {count:,} pool states ({args.model}, seed {args.seed}) to {args.out}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from pipeline.backtest.data import MarketDataError, write_market
    from pipeline.backtest.ohlcv import import_ohlcv

    if not args.csv.is_file():
        raise UserError(f"no file {args.csv}")
    pools = _pools(args)
    if len(pools) != 1:
        raise UserError("give the one pool the candles move: --pool ID")
    (pool,) = pools
    decimals = {a.symbol: a.decimals for a in topology_of(args).assets}
    base = args.base or pool.token0
    meta = {"ohlcv": {"file": args.csv.name, "pool": pool.pool_id, "base": base}}
    try:
        count = write_market(
            args.out, meta, import_ohlcv(args.csv, pool, decimals, base=base, bar_ms=args.bar)
        )
    except (MarketDataError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {count:,} pool states ({count // 4:,} bars) of {pool.pool_id} to {args.out}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from pipeline.backtest.record import Recording, run_record
    from pipeline.cli.stackfile import settings_for_stack

    settings = settings_for_stack()
    partitions = {t.name: t.partitions for t in topology_of(args).topics}

    def progress(stats: Recording) -> None:
        print(f"\rrecorded {stats.events:,} market records", end="", file=sys.stderr, flush=True)

    try:
        stats = run_record(
            settings.kafka,
            args.out,
            topics=args.topic or ("sep.market.pools", "sep.market.books"),
            seconds=args.seconds,
            max_events=args.max_events,
            from_beginning=args.from_beginning,
            progress=progress,
            partitions=partitions,
        )
    except KeyboardInterrupt:
        print(file=sys.stderr)
        print(f"stopped; {args.out} holds what was recorded")
        return 0
    except RuntimeError as exc:
        raise UserError(str(exc)) from exc
    print(file=sys.stderr)
    print(
        f"recorded {stats.events:,} records to {args.out} "
        f"({stats.reordered} written at an earlier record's time, {stats.skipped} tombstones)"
    )
    return 0


def register(sub: SubParsers) -> None:
    data = sub.add_parser(
        "data",
        help="make market data files for backtests (generate, import-ohlcv)",
        description="Make market data files for `sep backtest`.",
        **examples(
            "sep data generate --model regimes --seed 1 --steps 10080 --out week.jsonl",
            "sep data import-ohlcv eth-1h.csv --pool sim-weth-usdc-5 --out eth.jsonl.gz",
        ),
    )
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = actions.add_parser("generate", help="seeded pool histories")
    gen.add_argument(
        "--model", choices=["random_walk", "regimes", "gaps", "pump_dump"], default="random_walk"
    )
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--steps", type=int, default=1440, help="events per pool (default 1440)")
    gen.add_argument("--step", type=parse_duration_ms, default=60_000, help="default 1m")
    gen.add_argument(
        "--start-ms",
        type=int,
        default=1_767_225_600_000,
        help="first event time (default 2026-01-01T00:00Z)",
    )
    gen.add_argument("--drift", type=_decimal, default=Decimal(0), help="log-return per step")
    gen.add_argument(
        "--vol",
        type=_decimal,
        default=Decimal("0.002"),
        help="log-return stdev per step (default 0.002)",
    )
    gen.add_argument("--pool", action="append", help="a sim pool id (default: every one)")
    gen.add_argument("--out", type=Path, required=True)
    add_topology_option(gen)
    gen.set_defaults(handler=_cmd_generate)

    imp = actions.add_parser("import-ohlcv", help="OHLCV candles (CSV) as one pool's states")
    imp.add_argument("csv", type=Path)
    imp.add_argument("--pool", action="append", required=True, help="the sim pool it moves")
    imp.add_argument("--base", help="the asset prices are quoted for (default: token0)")
    imp.add_argument(
        "--bar",
        type=parse_duration_ms,
        default=None,
        help="bar length (default: the gap between the first two bars)",
    )
    imp.add_argument("--out", type=Path, required=True)
    add_topology_option(imp)
    imp.set_defaults(handler=_cmd_import)

    rec = sub.add_parser(
        "record",
        help="record the live market topics into a data file",
        description="Record sep.market.pools and sep.market.books as they go by into a "
        "market data file for `sep backtest` (Ctrl-C stops and keeps what was recorded).",
        **examples("sep record --seconds 600 --out live.jsonl"),
    )
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--seconds", type=float, default=None, help="stop after (default: Ctrl-C)")
    rec.add_argument("--max-events", type=int, default=None)
    rec.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the topics' first records (compacted pools: the latest)",
    )
    rec.add_argument("--topic", action="append", help="a topic (default: pools and books)")
    add_topology_option(rec)
    rec.set_defaults(handler=_cmd_record)
