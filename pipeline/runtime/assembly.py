"""The topology's stages built into stage groups: what the Kafka worker and the in-memory
runtime both run (the same processors, the same fusion, the same tables)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.runtime.delivery.groups import StageGroup, StageNode, handoff_topics, plan_groups
from pipeline.runtime.delivery.tables import Table, TableSet
from pipeline.runtime.lifecycle import Lifecycle, load_builder
from pipeline.stages.base import StageContext
from pipeline.topology.fusion import feedback_edges
from pipeline.topology.models import Topology


def build_groups(
    topology: Topology,
    context: StageContext,
    lifecycle: Lifecycle,
    tables: TableSet,
    stages: Sequence[str] | None,
    fuse: bool,
    feedback: bool = False,
) -> list[StageGroup]:
    """Each stage's processor, built once, in its group; each table partitioned like the
    group's source topic (so a fused chain's tables follow the partitions it is given).
    ``feedback``: a fused chain's feedback edges run in memory (``topology.fusion``);
    otherwise the earlier stage reads those topics from Kafka as declared."""
    partitions = {t.name: t.partitions for t in topology.topics}
    groups: list[StageGroup] = []
    for chain in plan_groups(topology, stages, fuse):
        source = chain[0].inputs[0]
        nodes: list[StageNode] = []
        for spec in chain:
            made: list[Table] = []
            events = spec.outputs[0] if spec.outputs else None
            context.table = _table_factory(tables, made, source, partitions[source], events)
            processor = load_builder(spec)(context)
            lifecycle.processors.append(processor)
            nodes.append(StageNode(spec, processor, made))
        # A fused planner gets its executor's reports in memory (``topology.fusion``).
        edges = feedback_edges(chain, topology) if feedback else ()
        groups.append(StageGroup(nodes, handoff_topics(chain), partitions, edges))
    return groups


def _table_factory(
    tables: TableSet, made: list[Table], source: str, partitions: int, events: str | None
) -> Callable[[str, str], Table]:
    def table(name: str, help: str) -> Table:
        made.append(tables.make(name, help, source, partitions, events))
        return made[-1]

    return table
