"""``sep kill`` and ``sep resume``: the kill switch, globally or for one strategy.

    sep kill --reason "venue incident"               stop all trading
    sep kill --strategy dca --reason "bad signal"    stop one strategy
    sep kill --status                                the switches and the venue breakers
    sep resume --reason "incident closed"            trading again (explicit, recorded)

Each change is a ``control.killed`` / ``control.resumed`` event on ``sep.control`` with who
(``--actor``, default user@host) and why; the command prints what it did, then the state.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline.cli.common import UserError, examples
from pipeline.cli.stackfile import settings_for_stack

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers
    from pipeline.control.state import ControlState
    from pipeline.models.events import Event


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def render_state(state: ControlState) -> str:
    from pipeline.control.kill_switch import breakers, switches

    lines = ["kill switches:"]
    found = switches(state)
    if not any(s.engaged for s in found):
        lines.append("  none engaged: trading is on")
    for switch in found:
        what = "ENGAGED" if switch.engaged else "resumed"
        lines.append(
            f"  {switch.scope:<24} {what:<8} since {_when(switch.since_ms)} "
            f"by {switch.actor}: {switch.reason}"
        )
    lines.append("venue breakers:")
    venues = breakers(state)
    if not venues:
        lines.append("  all closed (none has changed)")
    for breaker in venues:
        retry = f", probes from {_when(breaker.retry_at_ms)}" if breaker.retry_at_ms else ""
        lines.append(
            f"  {breaker.venue:<24} {breaker.state.value:<9} since {_when(breaker.since_ms)}"
            f"{retry} ({breaker.reason}; last failure: {breaker.last_reason or '-'})"
        )
    return "\n".join(lines)


def state_json(state: ControlState) -> dict[str, object]:
    from pipeline.control.kill_switch import breakers, switches

    return {
        "killSwitches": [s.to_wire() for s in switches(state)],
        "breakers": [b.to_wire() for b in breakers(state)],
    }


def _said(event: Event | None, scope: str, verb: str) -> str:
    if event is None:
        return f"the kill switch {scope} was engaged already: nothing published"
    return (
        f"{verb} the kill switch {scope}: {event.topic} seq {event.seq} at "
        f"{event.timestamp.isoformat(timespec='milliseconds')}"
    )


def _cmd(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from pipeline.control import kill_switch

    bootstrap = settings_for_stack().kafka
    scope = kill_switch.scope_of(args.strategy)
    if args.command == "kill" and args.status:
        if args.reason or args.strategy:
            raise UserError("--status only shows the state: drop --reason and --strategy")
        state = asyncio.run(kill_switch.read_state(bootstrap))
        print(json.dumps(state_json(state)) if args.json else render_state(state))
        return 0
    if not args.reason or not args.reason.strip():
        raise UserError(f"say why: sep {args.command} --reason '...' (it is recorded)")
    try:
        if args.command == "kill":
            event, state = asyncio.run(
                kill_switch.engage(bootstrap, scope, args.actor, args.reason.strip())
            )
            said = _said(event, scope, "engaged")
        else:
            event, state = asyncio.run(
                kill_switch.resume(bootstrap, scope, args.actor, args.reason.strip())
            )
            said = _said(event, scope, "resumed")
    except kill_switch.NotEngaged as exc:
        raise UserError(str(exc)) from exc
    except ValidationError as exc:
        raise UserError(f"not a valid change: {exc.errors()[0]['msg']}") from exc
    if args.json:
        print(json.dumps({"did": said, **state_json(state)}))
    else:
        print(said)
        print(render_state(state))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", metavar="ID", help="one strategy (default: global)")
    parser.add_argument("--reason", help="why (required; recorded with the change)")
    parser.add_argument(
        "--actor", default=default_actor(), help="who (default: user@host of this shell)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=_cmd)


def register(sub: SubParsers) -> None:
    kill = sub.add_parser(
        "kill",
        help="stop trading (globally or one strategy); --status shows the switches",
        description=(
            "Engage the kill switch: every worker stops within a second -- no new intent is "
            "accepted, no new plan made, no step sent; what was sent lands and is reported. "
            "Trading resumes only with `sep resume`."
        ),
        **examples(
            "sep kill --reason 'venue incident'",
            "sep kill --strategy dca --reason 'signal looks wrong'",
            "sep kill --status",
        ),
    )
    _common(kill)
    kill.add_argument("--status", action="store_true", help="only print the current state")
    resume = sub.add_parser(
        "resume",
        help="resume trading after `sep kill` (globally or one strategy)",
        description="Disengage a kill switch (recorded with who and why).",
        **examples(
            "sep resume --reason 'incident closed'",
            "sep resume --strategy dca --reason 'signal fixed'",
        ),
    )
    _common(resume)
