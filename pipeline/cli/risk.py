"""``sep risk``: see the risk engine's picture, change a strategy's limits, reset a breaker.

sep risk show                                          states, kills, limits, usage, venues
sep risk limits set dca max_position=250000 max_open_intents=20 --reason "new desk limits"
sep risk limits set '*' max_concentration=0.5 --reason "every strategy"
sep risk limits clear dca --reason "back to topology.yaml"
sep risk reset strategy:dca --reason "loss reviewed with the desk head"
sep risk reset global --reason "..."

Every change is an event on the control topic with who (``--actor``, default user@host) and
why (``--reason``, required); the workers obey it within a second (docs/risk.md).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
from typing import TYPE_CHECKING, Any

from pipeline.cli.common import UserError, add_topology_option, examples, topology_of
from pipeline.cli.stackfile import settings_for_stack
from pipeline.risk.limits import RULES

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} (cli)"


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["max_position=5", ...]`` -> ``{"max_position": "5"}`` (a readable error otherwise)."""
    out: dict[str, str] = {}
    for item in items:
        rule, sep, value = item.partition("=")
        if not sep or not rule or not value:
            raise UserError(f"{item!r}: give rule=value, e.g. max_position=250000")
        out[rule.strip()] = value.strip()
    return out


def _cmd_limits_set(args: argparse.Namespace) -> int:
    from pipeline.risk import actions
    from pipeline.risk.limits import LimitError

    changes = parse_assignments(args.rules)
    if not changes and not args.clear:
        raise UserError("name at least one rule=value (or use `sep risk limits clear`)")
    settings = settings_for_stack()
    try:
        event = asyncio.run(
            actions.set_limits(
                settings.kafka,
                args.strategy,
                changes,
                actor=args.actor,
                reason=args.reason,
                clear=args.clear,
            )
        )
    except LimitError as exc:
        raise UserError(str(exc)) from exc
    limits = event.payload["limits"] or "(none: the topology's limits)"
    print(f"{event.correlation_id} seq {event.seq}: {limits}")
    return 0


def _cmd_limits_clear(args: argparse.Namespace) -> int:
    args.rules, args.clear = [], True
    return _cmd_limits_set(args)


def _cmd_reset(args: argparse.Namespace) -> int:
    from pipeline.risk import actions

    try:
        actions.check_scope(args.scope)
    except actions.ScopeError as exc:
        raise UserError(str(exc)) from exc
    settings = settings_for_stack()
    event = asyncio.run(
        actions.reset(settings.kafka, args.scope, actor=args.actor, reason=args.reason)
    )
    print(f"{event.correlation_id} seq {event.seq}: {event.payload['message']}")
    return 0


async def _status(args: argparse.Namespace) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from pipeline.risk.status import risk_status
    from pipeline.store import risk_usage
    from pipeline.store.control_log import latest_control

    settings = settings_for_stack()
    client = aioredis.from_url(settings.redis, decode_responses=True)
    try:
        control = await latest_control(client, settings.redis_prefix)
        usage = await risk_usage.read(client, settings.redis_prefix)
    finally:
        await client.aclose()
    return risk_status(topology_of(args), control, usage)


def _killed(kill: dict[str, Any] | None) -> str:
    if not kill:
        return ""
    return f"  KILLED: kill switch {kill.get('scope')} by {kill.get('actor')}: {kill.get('reason')}"


def render_show(status: dict[str, Any]) -> str:
    """``sep risk show``'s text: breaker states, kill switches, limits against usage and the
    venue breakers -- the switches and breakers as ``sep kill --status`` names them."""
    lines: list[str] = []
    quote = status["quoteAsset"]
    g = status["global"]
    lines.append(f"global: {g['state']}" + (f"  ({g['change']['message']})" if g["change"] else ""))
    switches = [status["killSwitch"]["global"], *status["killSwitch"]["strategies"].values()]
    switches = sorted((k for k in switches if k), key=lambda k: (not k["engaged"], k["scope"]))
    lines.append("kill switches:")
    if not any(k["engaged"] for k in switches):
        lines.append("  none engaged: trading is on")
    for kill in switches:
        what = "ENGAGED" if kill["engaged"] else "resumed"
        lines.append(
            f"  {kill['scope']:<24} {what:<8} at {kill.get('at')} "
            f"by {kill.get('actor')}: {kill.get('reason')}"
        )
    if not status["strategies"]:
        lines.append("no strategy seen yet")
    for s in status["strategies"]:
        lines.append(
            f"\n{s['strategyId']}: {s['state']}"
            + (f"  ({s['change']['message']})" if s["change"] else "")
        )
        if s.get("killed"):
            lines.append(_killed(s["killed"]))
        usage = s["usage"] or {}
        rows = (
            ("max_open_intents", usage.get("openIntents")),
            ("max_daily_notional", usage.get("tradedToday")),
            ("max_position", usage.get("largestPosition")),
            ("max_concentration", usage.get("concentration")),
        )
        for rule, used in rows:
            limit = s["limits"].get(rule, "off")
            lines.append(f"  {rule:<20} {used if used is not None else '-':>18} / {limit}")
        if usage:
            lines.append(f"  equity {usage.get('equity')} {quote}, P&L {usage.get('pnl')} {quote}")
        if s["overrides"]:
            lines.append(f"  run-time overrides: {s['overrides']}")
    lines.append("\nvenue breakers:")
    if not status["breakers"]:
        lines.append("  all closed (none has changed)")
    for venue, b in sorted(status["breakers"].items()):
        lines.append(
            f"  {venue:<24} {b.get('state'):<9} at {b.get('at')} "
            f"({b.get('reason')}; last failure: {b.get('lastReason') or '-'})"
        )
    if status["usageAt"] is None:
        lines.append("\n(no usage report: no worker is validating, or Redis is not the stack's)")
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace) -> int:
    print(render_show(asyncio.run(_status(args))))
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "risk",
        help="risk limits and breakers: show, change limits, reset",
        description="See the risk engine's state, change a strategy's limits at run time, "
        "or reset a tripped breaker. Every change is a recorded event with who and why.",
        **examples(
            "sep risk show",
            "sep risk limits set dca max_position=250000 --reason 'desk limits'",
            "sep risk reset strategy:dca --reason 'loss reviewed'",
        ),
    )
    rsub = p.add_subparsers(dest="risk_command", metavar="ACTION", required=True)
    show = rsub.add_parser(
        "show", help="states, kill switches, limits against usage, venue breakers"
    )
    add_topology_option(show)
    show.set_defaults(handler=_cmd_show)

    limits = rsub.add_parser("limits", help="change a strategy's limits at run time")
    lsub = limits.add_subparsers(dest="limits_command", metavar="ACTION", required=True)
    for name, handler, helptext in (
        ("set", _cmd_limits_set, "set rules (others keep their run-time values)"),
        ("clear", _cmd_limits_clear, "drop every run-time override: the topology's limits"),
    ):
        q = lsub.add_parser(name, help=helptext)
        q.add_argument("strategy", help="strategy id, or '*' for every strategy's")
        if name == "set":
            q.add_argument(
                "rules",
                nargs="*",
                metavar="RULE=VALUE",
                help=f"rules: {', '.join(RULES)}; value 'none' switches a rule off",
            )
            q.add_argument(
                "--clear", action="store_true", help="drop the other run-time overrides first"
            )
        q.add_argument("--reason", required=True, help="why (recorded with the change)")
        q.add_argument("--actor", default=default_actor(), help="who (default: user@host)")
        q.set_defaults(handler=handler)

    reset = rsub.add_parser("reset", help="put a tripped breaker back to NORMAL (a new epoch)")
    reset.add_argument("scope", help="global, or strategy:<strategy id>")
    reset.add_argument("--reason", required=True, help="why (recorded with the change)")
    reset.add_argument("--actor", default=default_actor(), help="who (default: user@host)")
    reset.set_defaults(handler=_cmd_reset)
