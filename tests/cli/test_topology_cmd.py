"""``sep topology``: the graph the topology declares, and a readable error when it is invalid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.cli.main import main
from pipeline.cli.topology_cmd import render_topology
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from tests.lanes_support import lanes_on

TOPOLOGY = load_topology()


def line_of(text: str, start: str) -> str:
    matches = [line for line in text.splitlines() if line.strip().startswith(start)]
    assert len(matches) == 1, (start, matches)
    return matches[0]


def test_every_stage_with_its_inputs_outputs_and_settings() -> None:
    text = render_topology(TOPOLOGY)
    for stage in TOPOLOGY.stages:
        line = line_of(text, f"{stage.name} ")
        assert ", ".join(stage.inputs) in line
        if stage.outputs:
            assert line.endswith(", ".join(stage.outputs))
        assert f"fn {stage.function}" in text
    lines = text.splitlines()
    for stage in TOPOLOGY.stages:  # the line under the stage's holds its settings
        settings = lines[lines.index(line_of(text, f"{stage.name} ")) + 1]
        assert f"concurrency {stage.concurrency}" in settings
        assert f"batch {stage.batch.max}/{stage.batch.within_ms}ms" in settings
    project = lines[lines.index(line_of(text, "project ")) + 1]
    assert "batch 2000/10ms" in project  # what topology.yaml says, as a reader would see it
    assert f"niceness {TOPOLOGY.stage('project').niceness}" in project
    assert "niceness" not in lines[lines.index(line_of(text, "ingest ")) + 1]


def test_a_singleton_stage_says_so() -> None:
    runner = render_topology(TOPOLOGY).splitlines()
    at = next(i for i, line in enumerate(runner) if line.startswith("  strategy_runner "))
    assert "singleton" in runner[at + 1]


def test_a_stage_without_outputs_stores() -> None:
    assert line_of(render_topology(TOPOLOGY), "project ").endswith("-> (stores)")


def test_topics_say_who_writes_and_who_reads() -> None:
    text = render_topology(TOPOLOGY)
    assert line_of(text, "sep.intents.submitted ").endswith(
        "strategy_runner, external producers -> ingest"
    )
    assert line_of(text, "sep.deadletter ").endswith("ingest -> nobody in the pipeline")
    plans = line_of(text, "sep.plans ")
    assert plans.endswith("plan -> execute, project")
    assert "8 partitions" in plans
    assert "key intent_id" in plans


def test_venues_and_assets_are_listed() -> None:
    text = render_topology(TOPOLOGY)
    assert line_of(text, "venues:") == "venues: uniswap_v3, sim"
    assert line_of(text, "assets:") == "assets: WETH, USDC, WBTC, DAI, ARB"
    assert text.splitlines()[0] == "app 'sep' (mode live)"


def test_disabled_venues_are_not_listed() -> None:
    data = TOPOLOGY.model_dump(by_alias=True)
    for venue in data["plugins"]["venues"].values():
        venue["enabled"] = False
    text = render_topology(type(TOPOLOGY).model_validate(data))
    assert line_of(text, "venues:") == "venues: none"


def test_command_prints_the_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--topology", str(DEFAULT_PATH)]) == 0
    assert capsys.readouterr().out.strip() == render_topology(TOPOLOGY)


def test_command_reports_an_invalid_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    next(s for s in data["stages"] if s["name"] == "plan")["batch"] = {"max": 0}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["topology", "--topology", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "stages[plan].batch.max" in captured.err
    assert str(bad) in captured.err
    assert "Traceback" not in captured.err


def test_the_lanes_are_listed_with_their_topics() -> None:
    assert "lanes:" not in render_topology(TOPOLOGY)  # declared, but off by default
    text = render_topology(lanes_on())
    assert "lanes: sep.intents.ingested split by priority" in text
    assert "  fast     priorities 7-10, weight 8" in text
    assert "  bulk     priorities 1-3, weight 1, min share 0.1" in text
    assert "sep.intents.ingested.bulk" in text


def test_a_fused_chain_shows_what_it_passes_in_memory() -> None:
    text = render_topology(TOPOLOGY)
    assert line_of(text, "[ingest,") == "  [ingest, validate, prioritise, plan, execute]"
    assert line_of(text, "handed over  ingest -> validate") == (
        "    handed over  ingest -> validate: sep.intents.ingested"
    )
    assert line_of(text, "handed over  plan -> execute") == (
        "    handed over  plan -> execute: sep.plans"
    )
    # Plan still declares sep.executions: read from Kafka unless the feedback is switched on.
    assert line_of(text, "plan ").startswith(
        "  plan        sep.intents.prioritised, sep.executions"
    )
    assert line_of(text, "feedback     execute -> plan").startswith(
        "    feedback     execute -> plan: sep.executions (read from Kafka;"
    )
    fed = line_of(render_topology(TOPOLOGY, feedback=True), "fed back")
    assert fed.startswith("    fed back     execute -> plan: sep.executions (in memory, next pass;")
