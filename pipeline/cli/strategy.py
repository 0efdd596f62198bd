"""``sep strategy list|enable|disable|configure``: strategies switched at run time.

Each change is an event on ``sep.control`` with who (``--actor``, default ``$USER@host``) and
why (``--reason``, required), which the strategy runner obeys within a second
(``pipeline.strategy_admin``).  ``--set key=value`` sets one config field (values read as
YAML, numbers kept as written so amounts stay exact decimals: ``--set amount=250``,
``--set allowed_venues=[sim]``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from pipeline.cli.common import UserError, add_topology_option, examples, topology_of
from pipeline.cli.stackfile import settings_for_stack

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def parse_setting(text: str) -> tuple[str, Any]:
    """``amount=250`` -> ("amount", "250"); lists and maps as YAML; numbers as written."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"not key=value: {text!r}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{key}: not a YAML value: {exc}") from exc
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = raw.strip()  # "0.01" stays a string: the config's Decimal reads it exactly
    return key.strip(), value


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def render_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no strategies (plugins.strategies in topology.yaml, or `sep strategy enable`)"
    lines = [f"{'strategy':<16} {'plugin':<10} {'state':<9} {'from':<9} config"]
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        lines.append(
            f"{row['strategyId']:<16} {row['plugin']:<10} {state:<9} {row['source']:<9} "
            f"{orjson.dumps(row['config'], option=orjson.OPT_SORT_KEYS).decode()}"
        )
        if row["changedBy"]:
            lines.append(f"{'':<16} changed by {row['changedBy']}: {row['reason']}")
    return "\n".join(lines)


async def _list(bootstrap: str, args: argparse.Namespace) -> str:
    from pipeline.control.feed import ControlFeed
    from pipeline.strategy_admin import changes_in, strategy_rows

    topology = topology_of(args)
    feed = ControlFeed(bootstrap)
    await feed.start()
    try:
        rows = strategy_rows(topology, changes_in(feed.state))
    finally:
        await feed.stop()
    if args.json:
        return orjson.dumps({"strategies": rows}, option=orjson.OPT_INDENT_2).decode()
    return render_rows(rows)


def _cmd_strategy(args: argparse.Namespace) -> int:
    from pipeline.strategy_admin import StrategyChangeError, change_strategy

    settings = settings_for_stack()
    if args.action == "list":
        print(asyncio.run(_list(settings.kafka, args)))
        return 0
    config = dict(getattr(args, "set", None) or [])
    if args.action == "configure" and not config:
        raise UserError("configure needs at least one --set key=value")
    try:
        event = asyncio.run(
            change_strategy(
                settings.kafka,
                topology_of(args),
                args.action,
                args.strategy_id,
                actor=args.actor or default_actor(),
                reason=args.reason,
                plugin=getattr(args, "plugin", None),
                config=config,
            )
        )
    except StrategyChangeError as exc:
        raise UserError("\n".join(f"  {p}: {m}" for p, m in exc.problems)) from exc
    payload = event.payload
    print(
        f"{event.topic} {args.strategy_id} (seq {event.seq}, event {event.event_id}): "
        f"{'enabled' if payload['enabled'] else 'disabled'}, config "
        f"{orjson.dumps(payload['config'], option=orjson.OPT_SORT_KEYS).decode()}"
    )
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "strategy",
        help="list, enable, disable or configure strategies at run time",
        description="Strategies come from plugins.strategies in topology.yaml; these commands "
        "change them while the platform runs. Each change is an event on sep.control (who, "
        "why) that the strategy runner obeys within a second.",
        **examples(
            "sep strategy list",
            'sep strategy disable dca --reason "pause buying during the upgrade"',
            'sep strategy configure dca --set amount=250 --reason "bigger buys"',
            "sep strategy enable dca-btc --plugin dca --set asset=WBTC --set amount=50 "
            '--set interval_ms=60000 --reason "add BTC"',
        ),
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each strategy, enabled or not, with its config")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_topology_option(listing)
    for name, text in (
        ("enable", "start a strategy (or add one: name its --plugin)"),
        ("disable", "stop a strategy (its state is kept)"),
        ("configure", "change config fields (the rest kept)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("strategy_id", metavar="STRATEGY")
        action.add_argument("--reason", required=True, help="why (kept with the change)")
        action.add_argument("--actor", help="who (default: $USER@host)")
        if name != "disable":
            action.add_argument(
                "--set",
                action="append",
                type=parse_setting,
                metavar="KEY=VALUE",
                help="a config field (repeat for several)",
            )
        if name == "enable":
            action.add_argument("--plugin", help="the strategy plugin, for a new strategy id")
        add_topology_option(action)
    p.set_defaults(handler=_cmd_strategy)
