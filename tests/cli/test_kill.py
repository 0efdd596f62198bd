"""``sep kill`` / ``sep resume`` against the real broker: what they publish on ``sep.control``
and print.  A strategy of this test's own is killed (the broker is shared by the session:
a global kill would stop other tests' workers)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from pipeline.cli.main import main
from pipeline.control import kill_switch
from pipeline.control.keys import kill_key
from pipeline.runtime.topics import ensure_topics
from pipeline.topology import load_topology


@pytest.fixture
def kafka(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> str:
    asyncio.run(ensure_topics(kafka_bootstrap, load_topology()))
    monkeypatch.setenv("SEP_KAFKA", kafka_bootstrap)
    return kafka_bootstrap


def test_kill_then_resume_a_strategy(kafka: str, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = f"cli-{uuid.uuid4().hex[:8]}"
    scope = f"strategy:{strategy}"
    argv = ["--strategy", strategy, "--actor", "tester"]
    assert main(["kill", *argv, "--reason", "drill"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"engaged the kill switch {scope}: control.killed seq ")
    assert f"{scope:<24} ENGAGED" in out
    assert "by tester: drill" in out

    state = asyncio.run(kill_switch.read_state(kafka))
    held = state.get(kill_key(scope))
    assert held is not None
    assert (held.topic, held.payload["actor"], held.payload["reason"]) == (
        "control.killed",
        "tester",
        "drill",
    )
    assert state.killed(strategy) is not None

    # Engaging again publishes nothing.
    assert main(["kill", *argv, "--reason", "again"]) == 0
    assert "was engaged already: nothing published" in capsys.readouterr().out
    assert asyncio.run(kill_switch.read_state(kafka)).get(kill_key(scope)) == held

    assert main(["kill", "--status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    [mine] = [s for s in shown["killSwitches"] if s["scope"] == scope]
    assert (mine["engaged"], mine["seq"]) == (True, held.seq)

    assert main(["resume", *argv, "--reason", "drill over"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"resumed the kill switch {scope}: control.resumed seq {held.seq + 1}")
    assert f"{scope:<24} resumed" in out
    assert asyncio.run(kill_switch.read_state(kafka)).killed(strategy) is None


def test_refusals_are_user_errors(kafka: str, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = f"cli-{uuid.uuid4().hex[:8]}"
    assert main(["resume", "--strategy", strategy, "--reason", "x"]) == 2
    assert f"strategy:{strategy} is not engaged: nothing to resume" in capsys.readouterr().err
    assert main(["kill", "--strategy", strategy]) == 2
    assert "say why" in capsys.readouterr().err
    # Any id an intent may carry can be killed ("bad id!" too); a control character is none.
    assert main(["kill", "--strategy", "bad\x07id", "--reason", "x"]) == 2
    assert "not a valid change" in capsys.readouterr().err
