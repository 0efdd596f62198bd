"""``sep risk show`` against ``sep kill --status``: the same control changes (the topic's,
as ``sep kill --status`` reads them, and the Redis copy project keeps, as ``sep risk show``
reads them) give the same kill switches and venue breakers."""

from __future__ import annotations

import re

from pipeline.cli.kill import render_state
from pipeline.cli.risk import render_show
from pipeline.control.keys import breaker_key, kill_key
from pipeline.control.publish import control_event
from pipeline.control.state import ControlState
from pipeline.models.breakers import VenueBreakerChanged
from pipeline.models.control import KillSwitchChanged
from pipeline.models.events import Event
from pipeline.risk.status import risk_status
from pipeline.topology import load_topology

TOPOLOGY = load_topology()


def changes() -> list[Event]:
    def kill(scope: str, topic: str, seq: int) -> Event:
        payload = KillSwitchChanged(scope=scope, actor="ops", reason=f"why {scope}")
        return control_event(kill_key(scope), topic, payload, seq, 1_000 + seq)

    opened = VenueBreakerChanged(
        venue="sim",
        state="open",
        previous="closed",
        failures=3,
        last_reason="reverted: boom",
        since_ms=5_000,
        retry_at_ms=35_000,
        trips=1,
        actor="execute",
        reason="3 consecutive failures",
    )
    return [
        kill("strategy:dca", "control.killed", 1),
        kill("strategy:momentum", "control.killed", 1),
        kill("strategy:momentum", "control.resumed", 2),
        control_event(breaker_key("sim"), "venue.breaker_changed", opened, 1, 5_000),
    ]


def switch_states(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(global|strategy:\S+)\s+(ENGAGED|resumed)\b", text, re.M))


def test_risk_show_and_kill_status_agree() -> None:
    state = ControlState()
    for event in changes():
        state.apply(event)
    stored = {key: event.to_wire() for key, event in state.items()}  # project's Redis copy
    status_text = render_state(state)
    show_text = render_show(risk_status(TOPOLOGY, stored, None))

    assert switch_states(show_text) == switch_states(status_text)
    assert switch_states(show_text) == {"strategy:dca": "ENGAGED", "strategy:momentum": "resumed"}
    for text in (status_text, show_text):
        assert re.search(r"^\s+sim\s+open\b", text, re.M), text
        assert "last failure: reverted: boom" in text
    # The killed strategy's own section says so, though its breaker state is NORMAL.
    dca = show_text.split("\ndca: ", 1)[1]
    assert dca.startswith("NORMAL")
    assert "KILLED: kill switch strategy:dca by ops: why strategy:dca" in dca.splitlines()[1]


def test_nothing_engaged() -> None:
    text = render_show(risk_status(TOPOLOGY, {}, None))
    assert "none engaged: trading is on" in text
    assert "all closed (none has changed)" in text
