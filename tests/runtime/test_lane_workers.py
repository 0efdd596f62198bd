"""Dedicated lanes: which topics each kind of worker reads, its stages and its group."""

from __future__ import annotations

import pytest

from pipeline.runtime.app import group_id
from pipeline.runtime.lane_workers import LaneError, dedicated_lanes, lane_stages, worker_view
from pipeline.topology.loader import TopologyError
from pipeline.topology.models import Topology
from tests.lanes_support import lanes_on

CHAIN = ("validate", "prioritise", "plan", "execute")


def inputs(topology: Topology, stage: str) -> set[str]:
    return set(topology.stage(stage).inputs)


def test_a_lane_worker_reads_only_its_lane_in_the_scheduled_stages() -> None:
    topology = lanes_on(dedicated=("fast",))
    view = worker_view(topology, "fast")
    assert inputs(view, "ingest") == {"sep.intents.submitted.fast"}
    assert inputs(view, "validate") == {"sep.intents.ingested.fast"}
    # Stages that are not scheduled read as declared: every lane (project sees everything).
    assert inputs(view, "project") == inputs(topology, "project")
    assert inputs(view, "plan") == inputs(topology, "plan")


def test_the_other_workers_leave_the_dedicated_lane_to_it() -> None:
    topology = lanes_on(dedicated=("fast",))
    view = worker_view(topology, None)
    assert inputs(view, "ingest") == {
        "sep.intents.submitted",  # the unlabelled lane stays with the shared workers
        "sep.intents.submitted.normal",
        "sep.intents.submitted.bulk",
    }
    assert inputs(view, "validate") == {
        "sep.intents.ingested.normal",
        "sep.intents.ingested.bulk",
    }
    assert "sep.intents.ingested.fast" in inputs(view, "project")
    # Outputs are untouched: ingest still writes each intent to the lane its score gives.
    assert view.stage("ingest").outputs == topology.stage("ingest").outputs


def test_without_dedicated_lanes_every_worker_sees_the_whole_topology() -> None:
    topology = lanes_on()
    assert dedicated_lanes(topology) == ()
    assert worker_view(topology, None) is topology
    with pytest.raises(LaneError, match=r"lanes\.dedicated is \[\]"):
        worker_view(topology, "fast")


def test_a_lane_worker_runs_the_scheduled_stages_and_those_fused_after_them() -> None:
    topology = lanes_on(dedicated=("fast",))
    assert lane_stages(topology) == ("ingest", *CHAIN)


def test_a_lane_worker_has_a_consumer_group_of_its_own() -> None:
    topology = lanes_on(dedicated=("fast",))
    assert group_id(topology) == "sep"
    assert group_id(topology, lane_stages(topology), "fast") == "sep-lane-fast"
    assert group_id(topology, ["ingest"], "fast") == "sep-lane-fast-ingest"


def test_a_lane_not_declared_or_named_twice_is_refused_at_its_path() -> None:
    for dedicated, message in ((("urgent",), "not lanes of"), (("fast", "fast"), "unique")):
        with pytest.raises(TopologyError) as info:
            lanes_on(dedicated=dedicated)
        assert any(message in text for _, text in info.value.problems)
