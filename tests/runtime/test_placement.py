"""Which stages a worker runs: the singleton stages never with the others."""

from __future__ import annotations

import pytest

from pipeline.runtime.app import group_id
from pipeline.runtime.placement import (
    PlacementError,
    default_layout,
    layout_of,
    leaves_cores,
    place,
    process_niceness,
    resolve_layout,
)
from pipeline.topology import Topology, load_topology

TOPOLOGY = load_topology()
SPREAD = ("ingest", "validate", "prioritise", "plan", "execute", "project")


def test_a_default_worker_runs_every_stage_but_the_singletons() -> None:
    placement = place(TOPOLOGY)
    assert placement.stages == SPREAD
    assert (placement.singleton, placement.everything) == (False, True)
    assert group_id(TOPOLOGY, None) == group_id(TOPOLOGY, list(SPREAD)) == "sep"


def test_the_runner_runs_alone_in_a_group_of_its_own() -> None:
    placement = place(TOPOLOGY, ["strategy_runner"])
    assert placement.stages == ("strategy_runner",)
    assert (placement.singleton, placement.everything) == (True, False)
    assert group_id(TOPOLOGY, placement.stages) == "sep-strategy_runner"


def test_a_layout_is_neither() -> None:
    placement = place(TOPOLOGY, ["project", "ingest"])
    assert placement.stages == ("ingest", "project")  # topology order
    assert (placement.singleton, placement.everything) == (False, False)


def test_a_singleton_mixed_with_other_stages_is_refused() -> None:
    with pytest.raises(PlacementError, match=r"strategy_runner.*worker of their own"):
        place(TOPOLOGY, ["strategy_runner", "ingest"])


def test_an_unknown_stage_is_refused_by_name() -> None:
    with pytest.raises(PlacementError, match="'ingets'"):
        place(TOPOLOGY, ["ingets"])


def test_a_process_is_as_nice_as_its_least_nice_stage() -> None:
    """Project is declared nice: a process of its own lowers its priority; a process that
    also runs a stage of the execution path keeps the default."""
    assert TOPOLOGY.stage("project").niceness > 0
    nice = TOPOLOGY.stage("project").niceness
    assert process_niceness(TOPOLOGY, place(TOPOLOGY, ["project"])) == nice
    assert process_niceness(TOPOLOGY, place(TOPOLOGY, ["execute", "project"])) == 0
    assert process_niceness(TOPOLOGY, place(TOPOLOGY)) == 0


def test_only_a_process_without_the_nice_stages_leaves_them_the_cores() -> None:
    """Its fetches gather while records flow (``Settings.fetch_gather_ms``): the split
    layout's execution path.  A worker that runs project too, or a topology with no nice
    stage, fetches as records come."""
    chain = ["ingest", "validate", "prioritise", "plan", "execute"]
    assert leaves_cores(TOPOLOGY, place(TOPOLOGY, chain))
    assert not leaves_cores(TOPOLOGY, place(TOPOLOGY, ["project"]))
    assert not leaves_cores(TOPOLOGY, place(TOPOLOGY))  # every stage: the default layout
    plain = TOPOLOGY.model_copy(
        update={"stages": [s.model_copy(update={"niceness": 0}) for s in TOPOLOGY.stages]}
    )
    assert not leaves_cores(plain, place(plain, chain))


def test_the_split_layout_puts_the_nice_stages_in_processes_of_their_own() -> None:
    chain = "ingest,validate,prioritise,plan,execute"
    assert layout_of(TOPOLOGY, "split", 2) == (chain, chain, "project", "project")
    assert layout_of(TOPOLOGY, f"{chain}; project", 1) == (chain, "project")
    with pytest.raises(PlacementError, match="unknown stage"):
        layout_of(TOPOLOGY, "ingest;projct", 1)
    with pytest.raises(PlacementError, match="worker of their own"):
        layout_of(TOPOLOGY, "strategy_runner,ingest", 1)


def test_the_split_layout_is_the_default_when_a_stage_is_nice() -> None:
    assert default_layout(TOPOLOGY) == "split"
    assert resolve_layout(TOPOLOGY, None, 2) == layout_of(TOPOLOGY, "split", 2)
    assert resolve_layout(TOPOLOGY, "identical", 3) == ()
    assert resolve_layout(TOPOLOGY, "ingest;project", 1) == ("ingest", "project")
    # Without a nice stage there is nothing to split off: identical workers.
    data = TOPOLOGY.model_dump(by_alias=True)
    for stage in data["stages"]:
        stage["niceness"] = 0
    flat = Topology.model_validate(data)
    assert default_layout(flat) == "identical"
    assert resolve_layout(flat, None, 2) == ()
