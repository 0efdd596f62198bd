"""Consumer-group offsets handed over between process layouts (``pipeline.runtime.handover``):
which offsets a new layout's group takes, and on a real broker that it commits them once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.runtime.handover import (
    GroupReads,
    Offsets,
    hand_over,
    handed_offsets,
    known_layouts,
    layout_groups,
)
from pipeline.runtime.handover import commit_offsets as commit
from pipeline.topology import Topology, load_topology
from pipeline.topology.loader import parse_topology

TOPOLOGY = load_topology()
REPO_YAML = (Path(__file__).resolve().parents[2] / "topology.yaml").read_text()
SUBMITTED, EXECUTIONS, PLANS = "sep.intents.submitted", "sep.executions", "sep.plans"


def groups_of(layout: tuple[str, ...], topology: Topology = TOPOLOGY) -> dict[str, GroupReads]:
    return {g.group: g for g in layout_groups(topology, layout)}


def test_each_layouts_groups_read_what_their_stages_consume_from_kafka() -> None:
    default, split = known_layouts(TOPOLOGY)
    assert default == ()
    (everyone,) = groups_of(default).values()
    assert everyone.group == TOPOLOGY.app.id
    # The fused chain hands ingest's records to validate in memory: only project reads them.
    assert everyone.readers["sep.intents.ingested"] == {"project"}
    assert everyone.readers[EXECUTIONS] == {"plan", "project"}
    chain, project = groups_of(split).values()
    assert chain.readers == {SUBMITTED: {"ingest"}, EXECUTIONS: {"plan"}}
    assert project.readers[EXECUTIONS] == {"project"}
    assert SUBMITTED not in project.readers
    # With the feedback switch the chain does not read its own reports either.
    fed = layout_groups(TOPOLOGY, split, feedback=True)[0]
    assert fed.readers == {SUBMITTED: {"ingest"}}


def test_the_split_layout_takes_over_from_identical_workers() -> None:
    (everyone,) = groups_of(()).values()
    chain, project = groups_of(known_layouts(TOPOLOGY)[1]).values()
    committed: Offsets = {(SUBMITTED, 0): 40, (EXECUTIONS, 0): 150, (PLANS, 3): 7}
    sources = [(everyone, committed)]
    assert handed_offsets(chain, sources) == {(SUBMITTED, 0): 40, (EXECUTIONS, 0): 150}
    assert handed_offsets(project, sources) == {(EXECUTIONS, 0): 150, (PLANS, 3): 7}


def test_identical_workers_take_the_least_of_the_groups_that_ran_each_reader() -> None:
    (everyone,) = groups_of(()).values()
    chain, project = groups_of(known_layouts(TOPOLOGY)[1]).values()
    sources = [
        (chain, {(SUBMITTED, 0): 40, (EXECUTIONS, 0): 150}),
        (project, {(EXECUTIONS, 0): 120, (PLANS, 0): 30}),
    ]
    # sep.executions: plan ran in the chain's group, project in project's: the lesser.
    assert handed_offsets(everyone, sources) == {
        (SUBMITTED, 0): 40,
        (EXECUTIONS, 0): 120,
        (PLANS, 0): 30,
    }
    # Without project's group, nobody ran project on sep.executions: left to the beginning.
    assert handed_offsets(everyone, sources[:1]) == {(SUBMITTED, 0): 40}


async def test_a_new_group_takes_the_offsets_once_and_a_committed_one_keeps_its_own(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    # Topics and groups of this test's own (the app id names the groups).
    text = REPO_YAML.replace("sep.", f"h{run}.").replace("id: sep", f"id: h{run}")
    topology = parse_topology(text)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in topology.topics])
        split = known_layouts(topology)[1]
        submitted, executions = f"h{run}.intents.submitted", f"h{run}.executions"
        await commit(
            kafka_bootstrap,
            topology.app.id,
            {(submitted, 2): 5, (executions, 2): 9},
            within_s=30,
        )
        handed = await hand_over(kafka_bootstrap, topology, split)
        chain, project = (g.group for g in layout_groups(topology, split))
        assert handed == {
            chain: {(submitted, 2): 5, (executions, 2): 9},
            project: {(executions, 2): 9},
        }
        listed = await admin.list_consumer_group_offsets(chain)
        assert {(tp.topic, tp.partition): m.offset for tp, m in listed.items()} == handed[chain]
        # Once a group has committed, it keeps its own offsets.
        await commit(kafka_bootstrap, topology.app.id, {(submitted, 2): 50}, within_s=30)
        assert await hand_over(kafka_bootstrap, topology, split) == {}
    finally:
        await admin.close()


@pytest.mark.parametrize("layout", [(), ("project",)])
def test_a_layout_without_other_groups_committed_takes_nothing(layout: tuple[str, ...]) -> None:
    for group in layout_groups(TOPOLOGY, layout):
        assert handed_offsets(group, []) == {}
