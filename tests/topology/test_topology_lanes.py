"""``lanes:``: the split topic becomes a topic per lane everywhere it is named; the section
is checked, and the file's YAML paths still point at what they declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.topology.loader import TopologyError, parse_topology
from pipeline.topology.models import Topology

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "topology.yaml"
LANE_TOPICS = (
    "sep.intents.ingested.fast",
    "sep.intents.ingested.normal",
    "sep.intents.ingested.bulk",
)


def repo_data() -> dict[str, Any]:
    """topology.yaml with its lanes switched on (they are declared but off by default)."""
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    assert isinstance(data, dict)
    data["lanes"]["enabled"] = True
    return data


def parse(data: dict[str, Any]) -> Topology:
    return parse_topology(yaml.safe_dump(data, sort_keys=False))


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(TopologyError) as info:
        parse(data)
    return dict(info.value.problems)


def test_every_reader_and_writer_of_the_split_topic_names_the_lane_topics() -> None:
    topology = parse(repo_data())
    names = [t.name for t in topology.topics]
    assert "sep.intents.ingested" not in names
    assert all(t in names for t in LANE_TOPICS)
    split = topology.topic("sep.intents.submitted")  # unrelated topics untouched
    assert split.partitions == 8
    for lane in LANE_TOPICS:
        assert topology.topic(lane).partitions == 8  # co-partitioned with the chain's topics
        assert topology.topic(lane).key == "intent_id"
    for name in ("validate", "project", "strategy_runner"):
        assert set(LANE_TOPICS) <= set(topology.stage(name).inputs)
    assert set(LANE_TOPICS) <= set(topology.stage("ingest").outputs)
    assert topology.stage("ingest").events_topic == LANE_TOPICS[0]


def test_without_the_section_it_is_one_topic_as_before() -> None:
    data = repo_data()
    del data["lanes"]
    topology = parse(data)
    assert topology.lanes is None
    assert topology.stage("validate").inputs == ("sep.intents.ingested",)
    assert "sep.intents.ingested" in [t.name for t in topology.topics]


def test_the_repos_lanes_are_off_by_default_yet_checked() -> None:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    assert data["lanes"]["enabled"] is False
    topology = parse(data)
    assert topology.lanes is None
    assert topology.stage("validate").inputs == ("sep.intents.ingested",)
    data["lanes"]["lanes"][0]["priorities"] = [11, 12]  # a typo in a disabled section
    assert any(path.startswith("lanes") for path in problems_of(data))


def test_expansion_is_idempotent_when_a_topology_is_dumped_and_validated_again() -> None:
    topology = parse(repo_data())
    again = Topology.model_validate(topology.model_dump(by_alias=True, mode="json"))
    assert again == topology
    # A stage added later naming the split topic (the backtest's runner) is expanded too.
    data = topology.model_dump(by_alias=True, mode="json")
    data["stages"][-1]["inputs"] = ["sep.intents.ingested", "sep.executions"]
    assert Topology.model_validate(data).stages[-1].inputs == (
        LANE_TOPICS[0],
        "sep.executions",
        *LANE_TOPICS[1:],
    )


def test_the_lanes_must_cover_every_priority_once_highest_first() -> None:
    data = repo_data()
    data["lanes"]["lanes"][1]["priorities"] = [5, 6]  # 4 is in no lane
    assert "cover 1..10" in " ".join(problems_of(data).values())
    data = repo_data()
    data["lanes"]["lanes"].reverse()
    assert "highest priorities first" in " ".join(problems_of(data).values())


def test_an_unknown_split_topic_or_scheduled_stage_is_reported_at_its_path() -> None:
    data = repo_data()
    data["lanes"]["split"] = "sep.intents.ingestd"
    data["lanes"]["scheduled"] = ["validat"]
    problems = problems_of(data)
    assert "did you mean 'sep.intents.ingested'" in problems["lanes.split"]
    assert "did you mean 'validate'" in problems["lanes.scheduled[0]"]


def test_a_typo_elsewhere_still_points_at_its_own_yaml_path() -> None:
    # The split topic's place goes to the first lane, the others are appended: indices hold.
    data = repo_data()
    project = next(s for s in data["stages"] if s["name"] == "project")
    project["inputs"][3] = "sep.planz"
    problems = problems_of(data)
    assert "unknown topic 'sep.planz'" in problems["stages[project].inputs[3]"]


SUBMIT_LANES = (
    "sep.intents.submitted.fast",
    "sep.intents.submitted.normal",
    "sep.intents.submitted.bulk",
)


def test_the_input_topic_is_split_beside_itself_for_producers_that_choose_a_lane() -> None:
    topology = parse(repo_data())
    plain = topology.topic("sep.intents.submitted")  # stays: unlabelled submissions
    for name in SUBMIT_LANES:
        lane = topology.topic(name)
        assert (lane.partitions, lane.key) == (plain.partitions, plain.key)  # co-partitioned
    ingest = topology.stage("ingest")
    assert ingest.inputs == ("sep.intents.submitted", *SUBMIT_LANES)
    runner = topology.stage("strategy_runner")
    assert runner.outputs == ("sep.intents.submitted", *SUBMIT_LANES)
    assert runner.events_topic == "sep.intents.submitted"
    assert topology.lanes is not None
    assert topology.lanes.submit_topics == SUBMIT_LANES
    assert topology.lanes.unlabelled_lane.name == "normal"
    again = Topology.model_validate(topology.model_dump(by_alias=True, mode="json"))
    assert again == topology  # idempotent with both splits


def test_without_submit_the_input_topic_is_one_topic_and_unlabelled_defaults_to_the_middle() -> (
    None
):
    data = repo_data()
    del data["lanes"]["submit"]
    del data["lanes"]["unlabelled"]
    topology = parse(data)
    assert topology.stage("ingest").inputs == ("sep.intents.submitted",)
    assert not any(t.name in SUBMIT_LANES for t in topology.topics)
    assert topology.lanes is not None
    assert topology.lanes.submit_topics == ()
    assert topology.lanes.unlabelled_lane.name == "normal"  # priority 5's lane


def test_an_unknown_submit_topic_or_unlabelled_lane_is_reported_at_its_path() -> None:
    data = repo_data()
    data["lanes"]["submit"] = "sep.intents.submited"
    assert "did you mean 'sep.intents.submitted'" in problems_of(data)["lanes.submit"]
    data = repo_data()
    data["lanes"]["unlabelled"] = "middle"
    assert "'middle' is not a lane" in " ".join(problems_of(data).values())
