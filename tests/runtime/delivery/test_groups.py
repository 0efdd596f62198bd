"""How a worker's stages become groups: whole fusions, the fused part of one a worker runs
only partly, and no fusion when it is switched off."""

from __future__ import annotations

from pipeline.runtime.delivery.groups import StageNode, plan_groups
from pipeline.runtime.delivery.sourced import SourcedTable
from pipeline.runtime.delivery.tables import ChangelogTable
from pipeline.topology import load_topology
from pipeline.topology.models import StageSpec
from tests.lanes_support import lanes_on


def names(groups: list[list[StageSpec]]) -> list[str]:
    return ["+".join(s.name for s in g) for g in groups]


def test_a_worker_running_every_stage_runs_the_declared_fusion_as_one_group() -> None:
    topology = load_topology()
    assert topology.fusion == (("ingest", "validate", "prioritise", "plan", "execute"),)
    assert names(plan_groups(topology, None)) == [
        "ingest+validate+prioritise+plan+execute",
        "project",
        "strategy_runner",  # a singleton: a worker of its own runs it (runtime.placement)
    ]


def test_a_worker_running_part_of_a_fusion_fuses_the_neighbours_it_runs() -> None:
    topology = load_topology()
    planner = ("ingest", "validate", "prioritise", "plan", "project")
    assert names(plan_groups(topology, planner)) == ["ingest+validate+prioritise+plan", "project"]
    # Not neighbours in the chain: nothing to fuse.
    assert names(plan_groups(topology, ("ingest", "plan"))) == ["ingest", "plan"]
    assert names(plan_groups(topology, ("validate", "plan"))) == ["validate", "plan"]
    assert names(plan_groups(topology, ("execute",))) == ["execute"]


def test_with_lanes_on_ingest_ends_its_chain() -> None:
    # Ingest writes a topic per lane then, which validate's passes take by weight.
    assert names(plan_groups(lanes_on(), None)) == [
        "ingest",
        "validate+prioritise+plan+execute",
        "project",
        "strategy_runner",
    ]


def test_fusion_off_runs_every_stage_alone() -> None:
    topology = load_topology()
    assert names(plan_groups(topology, None, fuse=False)) == [
        "ingest",
        "validate",
        "prioritise",
        "plan",
        "execute",
        "project",
        "strategy_runner",
    ]


def test_a_stages_writing_tables_follow_the_tables_it_adds_later() -> None:
    """Kept between outputs, but a table made mid-pass (the strategy runner's, for a
    strategy it loads) is written from its first output on; a sourced table never is."""
    topology = load_topology()
    node = StageNode(topology.stage("plan"), processor=object())  # type: ignore[arg-type]
    assert node.writing_tables == []
    node.tables.append(SourcedTable("decided", "sep.plans", "", frozenset({"plan.created"})))
    assert node.writing_tables == []
    opened = ChangelogTable("opened", "sep-test-opened-changelog", "")
    node.tables.append(opened)
    assert node.writing_tables == [opened]
    assert node.writing_tables is node.writing_tables  # not rebuilt per output
    later = ChangelogTable("later", "sep-test-later-changelog", "")
    node.tables.append(later)
    assert node.writing_tables == [opened, later]
