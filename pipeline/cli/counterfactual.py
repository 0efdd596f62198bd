"""``sep replay --counterfactual``: rerun stored intents under other settings, and compare.

    sep replay --counterfactual --events backtest-out/events.jsonl --data pump.jsonl \\
        --set plan.max_splits=1 risk.max_notional=5000

The intents come from an event log (``--events``, a backtest's ``events.jsonl``) or, without
it, from the event store (``SEP_POSTGRES``); ``--data`` is the market data of that run (a
backtest's data file, or ``sep record`` of the live run).  See
``pipeline/backtest/counterfactual.py`` for what is compared and how.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import orjson

from pipeline.cli.common import UserError, topology_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--counterfactual",
        action="store_true",
        help="rerun the stored intents through validate, prioritise, plan and the sim "
        "venue under --set settings and compare each one's cost with what happened",
    )
    p.add_argument("--events", type=Path, help="an event log (default: the event store)")
    p.add_argument("--data", type=Path, help="the run's market data file (counterfactual)")
    p.add_argument(
        "--set",
        dest="settings",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="topology.yaml paths (risk.max_notional=5000, "
        "plugins.venues.sim.config.latency_ms=2000) or plan.max_splits=N",
    )
    p.add_argument(
        "--strategy-id",
        dest="strategy_ids",
        action="append",
        default=[],
        metavar="ID",
        help="only this strategy's intents (repeat for several; default: every one)",
    )
    p.add_argument("--out", type=Path, default=Path("counterfactual-out"))


async def _from_store(dsn: str) -> list[dict[str, Any]]:
    from pipeline.codec import encode_event
    from pipeline.store.eventstore import EventStore, to_event

    store = await EventStore.connect(dsn)
    try:
        events: list[dict[str, Any]] = []
        async for batch in store.scan():
            events += [orjson.loads(encode_event(to_event(s))) for s in batch]
        return events
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    from pipeline.backtest.counterfactual import (
        ArrivalPrices,
        SettingError,
        apply_settings,
        compare,
        read_log,
        select,
        submissions_of,
        totals,
    )
    from pipeline.backtest.data import MarketDataError, data_span, read_market
    from pipeline.backtest.driver import Backtest, write_event_log
    from pipeline.backtest.setup import BacktestSetupError, backtest_topology, data_pools
    from pipeline.cli.stackfile import settings_for_stack

    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)
    if args.data is None or not args.data.is_file():
        raise UserError("--counterfactual needs --data FILE: the market data of the run")
    if args.events is not None:
        if not args.events.is_file():
            raise UserError(f"no event log {args.events}")
        before = read_log(args.events)
    else:
        before = asyncio.run(_from_store(settings_for_stack().postgres))
    span = data_span(args.data)
    if span is None:
        raise UserError(f"{args.data} holds no market event")
    before, left_out = select(before, span, args.strategy_ids)
    submissions = submissions_of(before)
    if not submissions:
        raise UserError(
            f"no intent to replay: {left_out} left out (created outside the market data's "
            "span, or of another strategy)"
        )
    if left_out:
        print(
            f"{left_out} intent(s) left out: created outside the data's span or another strategy's"
        )
    try:
        # No strategy decides again: the intents are given.
        base = backtest_topology(
            topology_of(args), data_pools(args.data), strategies={}, require_strategy=False
        )
        topology, max_splits = apply_settings(base, args.settings)
    except (SettingError, BacktestSetupError, MarketDataError) as exc:
        raise UserError(str(exc)) from exc
    out: Path = args.out
    shutil.rmtree(out / "work", ignore_errors=True)
    backtest = Backtest(
        topology,
        read_market(args.data),
        out / "work",
        submissions=submissions,
        max_splits=max_splits,
    )
    result = asyncio.run(backtest.run())
    if result.fatal is not None:
        print(f"a stage failed: {result.fatal!r}")
        return 1
    write_event_log(out / "events.jsonl", result.events)
    after = [orjson.loads(e) for e in result.events]
    prices = ArrivalPrices(args.data, topology, topology.risk.quote_asset)
    rows = compare(before, after, prices)
    summary = totals(rows)
    q = topology.risk.quote_asset

    def cell(o: Any) -> str:
        if o.shortfall is None:
            return f"{o.state} {o.reason[:40]}".strip()
        return f"{o.shortfall:>12,.4f} {q} {o.bps:>8,.2f} bps"

    print(f"{'intent':40} {'as it happened':>34}   {'with ' + ' '.join(args.settings):>34}")
    for r in rows[:50]:
        print(f"{r.key[:40]:40} {cell(r.before):>34}   {cell(r.after):>34}")
    if len(rows) > 50:
        print(f"... {len(rows) - 50} more in {out / 'comparison.json'}")
    for side in ("before", "after"):
        t = summary[side]
        print(
            f"{side:>6}: {t['completed']} of {len(rows)} completed, shortfall "
            f"{t['shortfall']} {q}, mean {t['mean_bps']} bps"
        )
    (out / "comparison.json").write_text(
        json.dumps(
            {
                "settings": args.settings,
                "totals": summary,
                "intents": [
                    {
                        "intent": r.key,
                        "atMs": r.at_ms,
                        "before": _json(r.before),
                        "after": _json(r.after),
                    }
                    for r in rows
                ],
            },
            indent=2,
        )
        + "\n"
    )
    return 0


def _json(outcome: Any) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, str) else v)
        for k, v in vars(outcome).items()
    }
