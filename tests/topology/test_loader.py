"""Loading ``topology.yaml``: the repository's file loads; every error names its YAML path."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.topology import Topology, TopologyError, load_topology, parse_topology
from pipeline.topology.loader import DEFAULT_PATH, yaml_path


def repo_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    assert isinstance(data, dict)
    return data


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(TopologyError) as info:
        parse_topology(yaml.safe_dump(data, sort_keys=False))
    return info.value.problems


def stage(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["stages"] if s["name"] == name)


# ----------------------------------------------------------------------------- the real file


def test_repository_topology_loads() -> None:
    topology = load_topology()
    assert isinstance(topology, Topology)
    assert [s.name for s in topology.stages] == [
        "ingest",
        "validate",
        "prioritise",
        "plan",
        "execute",
        "project",
        "strategy_runner",
    ]
    # The strategy runner runs alone (it must see every partition); the others spread.
    assert topology.singleton_stages == ("strategy_runner",)
    # The six stages form one chain: each consumes what the previous one produces.
    chain = ["ingest", "validate", "prioritise", "plan", "execute"]
    for upstream, downstream in itertools.pairwise(chain):
        produced = set(topology.stage(upstream).outputs)
        assert produced & set(topology.stage(downstream).inputs), (upstream, downstream)
    # project stores what every other stage produces on the intent topics.
    project_inputs = set(topology.stage("project").inputs)
    for name in chain:
        assert set(topology.stage(name).outputs) - {"sep.deadletter"} <= project_inputs, name


def test_repository_topology_values() -> None:
    topology = load_topology()
    assert topology.stage("execute").batch.max == 500
    assert topology.stage("ingest").batch.max == 500  # the default
    assert topology.topic("sep.deadletter").retention_ms == 30 * 24 * 3600 * 1000
    assert topology.asset("USDC").decimals == 6
    assert topology.asset("ARB").chain_id == 42161
    assert "sim" in topology.plugins.venues


def test_env_var_chooses_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = repo_data()
    data["app"]["id"] = "from-env"
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("SEP_TOPOLOGY", str(path))
    assert load_topology().app.id == "from-env"
    # An explicit path wins over the environment.
    assert load_topology(DEFAULT_PATH).app.id == "sep"


def test_missing_file_is_a_topology_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TopologyError) as info:
        load_topology(missing)
    assert info.value.source == str(missing)
    assert "cannot read" in info.value.problems[0][1]
    assert str(missing) in str(info.value)


# ----------------------------------------------------------------------------- broken files


def test_broken_yaml_names_line_and_column() -> None:
    text = "app:\n  id: sep\ntopics: [\n  {name: a\n"
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "broken.yaml")
    ((where, message),) = info.value.problems
    assert where.startswith("line ")
    assert "column" in where
    assert "not valid YAML" in message
    assert "broken.yaml is invalid" in str(info.value)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology("- just\n- a list\n")
    assert info.value.problems == [("", "the top level must be a mapping")]
    assert "<root>" in str(info.value)


@pytest.mark.parametrize("value", [0, -5, 100_001, "lots"])
def test_bad_batch_value_names_the_stage_by_name(value: object) -> None:
    data = repo_data()
    stage(data, "plan")["batch"] = {"max": value}
    paths = [p for p, _ in problems_of(data)]
    assert paths == ["stages[plan].batch.max"]


def test_typo_in_a_stage_key_is_an_error_not_a_silent_default() -> None:
    data = repo_data()
    stage(data, "execute")["concurency"] = 4
    problems = problems_of(data)
    assert [p for p, _ in problems] == ["stages[execute].concurency"]
    assert "Extra inputs are not permitted" in problems[0][1]


def test_asset_errors_name_the_asset_by_symbol_and_wire_key() -> None:
    data = repo_data()
    data["assets"][1]["chainId"] = 0  # USDC
    assert [p for p, _ in problems_of(data)] == ["assets[USDC].chainId"]


def test_bad_topic_partitions() -> None:
    data = repo_data()
    data["topics"][0]["partitions"] = 0
    assert [p for p, _ in problems_of(data)] == ["topics[sep.intents.submitted].partitions"]


def test_several_problems_are_reported_together() -> None:
    data = repo_data()
    stage(data, "plan")["batch"] = {"max": 0}
    data["topics"][0]["partitions"] = 0
    data["app"]["mode"] = "yolo"
    paths = {p for p, _ in problems_of(data)}
    assert paths == {
        "stages[plan].batch.max",
        "topics[sep.intents.submitted].partitions",
        "app.mode",
    }


def test_unknown_topic_reference_is_refused() -> None:
    data = repo_data()
    stage(data, "validate")["inputs"] = ["sep.intents.ingestd"]
    problems = problems_of(data)
    # The problem says which reference and which stage (in its path or its message).
    assert any(
        "sep.intents.ingestd" in message and "validate" in f"{path} {message}"
        for path, message in problems
    ), problems


def test_unknown_topic_reference_names_its_yaml_path() -> None:
    # STYLE rule 5: errors name the YAML path.  The reference lives at
    # stages[validate].inputs; the root ("") does not tell a person where to look.
    data = repo_data()
    stage(data, "validate")["inputs"] = ["sep.intents.ingestd"]
    paths = [p for p, _ in problems_of(data)]
    assert any(p.startswith("stages[validate].inputs") for p in paths), paths


def test_unknown_reference_price_names_its_yaml_path() -> None:
    data = repo_data()
    data["risk"]["reference_prices"]["DOGE"] = "0.1"
    problems = problems_of(data)
    assert any("DOGE" in m for _, m in problems), problems
    assert any(p.startswith("risk.reference_prices") for p, _ in problems), problems


def test_every_reference_problem_is_reported_at_its_path() -> None:
    data = repo_data()
    stage(data, "validate")["inputs"] = ["sep.intents.ingestd"]
    stage(data, "plan")["outputs"] = ["sep.plans", "sep.nowhere"]
    data["risk"]["reference_prices"]["DOGE"] = "0.1"
    data["topics"].append(dict(data["topics"][0]))
    data["assets"].append(dict(data["assets"][1]))
    problems = dict(problems_of(data))
    assert set(problems) == {
        "stages[validate].inputs[0]",
        "fusion[0][1]",  # fused after ingest, validate no longer reads what ingest writes
        "stages[plan].outputs[1]",
        "risk.reference_prices.DOGE",
        f"topics[{len(data['topics']) - 1}].name",
        f"assets[{len(data['assets']) - 1}].symbol",
    }
    # A typo gets a suggestion; a repeat says where the first one is.
    assert "did you mean 'sep.intents.ingested'" in problems["stages[validate].inputs[0]"]
    assert "also topics[0]" in problems[f"topics[{len(data['topics']) - 1}].name"]


def test_a_repeated_stage_is_named_by_index() -> None:
    data = repo_data()
    data["stages"].append({**stage(data, "plan"), "inputs": ["sep.nowhere"]})
    last = len(data["stages"]) - 1
    paths = [p for p, _ in problems_of(data)]
    assert paths == [f"stages[{last}].name", f"stages[{last}].inputs[0]"]


# ----------------------------------------------------------------------------- yaml_path


def test_yaml_path_uses_names_then_symbols_then_indexes() -> None:
    data = {
        "stages": [{"name": "ingest"}, {"name": "plan", "batch": {"max": 0}}],
        "assets": [{"symbol": "WETH"}],
        "things": [["a"], {"other": 1}],
        "pools": [{"pool_id": "sim-weth-usdc-5", "fee": -1}],
    }
    assert yaml_path(("stages", 1, "batch", "max"), data) == "stages[plan].batch.max"
    assert yaml_path(("assets", 0, "decimals"), data) == "assets[WETH].decimals"
    assert yaml_path(("things", 0, 0), data) == "things[0][0]"
    assert yaml_path(("things", 1, "other"), data) == "things[1].other"
    assert yaml_path(("stages", 7, "name"), data) == "stages[7].name"  # out of range
    assert yaml_path(("pools", 0, "fee"), data) == "pools[sim-weth-usdc-5].fee"
    assert yaml_path((), data) == ""


def test_error_message_lists_every_problem() -> None:
    err = TopologyError("t.yaml", [("a.b", "bad"), ("", "worse")])
    assert str(err) == "t.yaml is invalid:\n  a.b: bad\n  <root>: worse"


def test_sep_mode_overrides_the_files_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_topology().app.mode == "live"  # the repository's file: today's behaviour
    monkeypatch.setenv("SEP_MODE", "paper")
    topology = load_topology()
    assert topology.app.mode == "paper"
    assert topology.with_mode("live").stages == load_topology(DEFAULT_PATH).stages


def test_an_unknown_sep_mode_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEP_MODE", "yolo")
    with pytest.raises(TopologyError) as info:
        load_topology()
    assert info.value.source == "SEP_MODE"
    assert "unknown mode 'yolo'" in info.value.problems[0][1]
