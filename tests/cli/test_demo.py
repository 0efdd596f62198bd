"""``sep demo``: its options, and the submissions it produces (no broker: a fake producer)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.demo import demo_submissions, stream_demo
from pipeline.cli.main import build_parser, main
from pipeline.config import Settings
from pipeline.models.intent import IntentSubmission
from pipeline.topology import load_topology

TOPOLOGY = load_topology()


class RecordingProducer:
    """Stands in for ``IntentProducer``: keeps what would have been sent."""

    sent: list[dict[str, Any]] = []

    def __init__(self, bootstrap: str, lanes: object = None, topology: object = None) -> None:
        self.bootstrap = bootstrap
        self.lanes = lanes
        self.topology = topology

    async def __aenter__(self) -> RecordingProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, body: dict[str, Any]) -> tuple[int, None]:
        RecordingProducer.sent.append(body)
        return 0, None

    async def flush(self) -> None:
        return None


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import pipeline.client

    RecordingProducer.sent = []
    monkeypatch.setattr(pipeline.client, "IntentProducer", RecordingProducer)
    return RecordingProducer.sent


def test_venue_is_repeatable_and_comma_separated() -> None:
    args = build_parser().parse_args(["demo", "--venue", "sim", "--venue", "uniswap_v3,sim"])
    assert args.venue == ["sim", "uniswap_v3,sim"]
    assert build_parser().parse_args(["demo"]).venue is None


def test_every_submission_allows_only_the_venues_given() -> None:
    bodies = list(demo_submissions(TOPOLOGY, 40, seed=3, run="r", venues=["sim"]))
    assert len(bodies) == 40
    for body in bodies:
        assert body["constraints"]["allowedVenues"] == ["sim"]
        parsed = IntentSubmission.model_validate(body)
        assert parsed.constraints.allowed_venues == ("sim",)


def test_without_venues_the_planner_chooses() -> None:
    for body in demo_submissions(TOPOLOGY, 20, seed=3, run="r"):
        assert "allowedVenues" not in body["constraints"]
        assert IntentSubmission.model_validate(body).constraints.allowed_venues is None


def test_same_seed_same_trades_and_the_run_makes_ids_unique() -> None:
    first = list(demo_submissions(TOPOLOGY, 10, seed=5, run="a"))
    again = list(demo_submissions(TOPOLOGY, 10, seed=5, run="b"))
    assert [b["assets"] for b in first] == [b["assets"] for b in again]
    assert len({b["clientIntentId"] for b in first + again}) == 20


def test_stream_demo_sends_them_with_the_venues(sent: list[dict[str, Any]]) -> None:
    count = asyncio.run(
        stream_demo(
            Settings(kafka="k:1"), TOPOLOGY, 12, rate=1e6, seed=1, venues=["uniswap_v3", "sim"]
        )
    )
    assert count == 12
    assert len(sent) == 12
    assert {tuple(b["constraints"]["allowedVenues"]) for b in sent} == {("uniswap_v3", "sim")}


def test_the_command_restricts_the_demo(
    sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--count", "5", "--rate", "1000000", "--venue", "sim"]) == 0
    assert [b["constraints"]["allowedVenues"] for b in sent] == [["sim"]] * 5
    assert "sent 5 demo intents restricted to sim" in capsys.readouterr().out


def test_an_unknown_venue_is_refused_before_anything_is_sent(
    sent: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--venue", "sim,uniswap"]) == 2
    assert sent == []
    err = capsys.readouterr().err
    assert "sep demo: unknown venue 'uniswap'; the topology's venues: uniswap_v3, sim" in err


def test_up_checks_its_demo_venue_before_starting_anything(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--demo-venue", "simm"]) == 2
    assert "sep up: unknown venue 'simm'" in capsys.readouterr().err
    assert list(data_dir.iterdir()) == []  # no service was started in the data directory
