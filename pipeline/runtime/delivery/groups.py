"""Stage groups: the unit the runtime schedules, one stage or several fused stages.

A group's first stage reads its input topics from Kafka.  When ``topology.yaml`` fuses
neighbouring stages (``fusion:``), each next stage of the group reads the previous stage's
output topic *in memory*: the outputs are still produced onto their declared topic (project,
audit and replay see no difference), and the same records, with the partition the producer
is told to use, are handed to the next stage in the same pass.  The model is Kafka Streams'
sub-topologies and Flink's operator chaining.

    Kafka sep.intents.ingested ─► validate ─► prioritise ─► plan ─► execute ─► Kafka
                                     │ memory      │ memory    │ memory     sep.executions
                                     ▼             ▼           ▼
                          Kafka sep.intents.validated, sep.intents.prioritised, sep.plans
                          (still produced)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.ops import kafka_partition
from pipeline.runtime.delivery.tables import Table
from pipeline.stages.base import StageProcessor
from pipeline.topology.models import StageSpec, Topology


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Kafka producer's default partitioner picks for ``key`` (murmur2,
    in Rust), so a record handed over in memory and its copy on the topic agree."""
    return kafka_partition(key, partitions)


@dataclass
class StageNode:
    spec: StageSpec
    processor: StageProcessor
    tables: list[Table] = field(default_factory=list)


@dataclass
class StageGroup:
    nodes: list[StageNode]
    handoff: list[str]
    """``handoff[i]``: the topic stage i hands to stage i+1 in memory."""
    partitions: Mapping[str, int]
    """Partition count of every topic (to place handed-over records)."""

    @property
    def name(self) -> str:
        return "+".join(n.spec.name for n in self.nodes)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The topics this group reads from Kafka."""
        topics = list(self.nodes[0].spec.inputs)
        for node, handed in zip(self.nodes[1:], self.handoff, strict=True):
            topics += [t for t in node.spec.inputs if t != handed and t not in topics]
        return tuple(topics)

    def kafka_inputs_of(self, index: int) -> tuple[str, ...]:
        """The topics stage ``index`` of the group reads from Kafka directly."""
        spec = self.nodes[index].spec
        if index == 0:
            return spec.inputs
        return tuple(t for t in spec.inputs if t != self.handoff[index - 1])

    @property
    def batch_max(self) -> int:
        return self.nodes[0].spec.batch.max

    @property
    def within_s(self) -> float:
        return self.nodes[0].spec.batch.within_ms / 1000


class FusionError(ValueError):
    """A ``fusion:`` entry the runtime cannot run as one pass."""


def plan_groups(
    topology: Topology, stages: Sequence[str] | None, fuse: bool = True
) -> list[list[StageSpec]]:
    """The worker's stages as groups, in topology order: fused chains and single stages.

    ``stages``: the subset this worker runs (None: all).  A worker running part of a fusion
    fuses the neighbouring stages of it that it runs (a planner-only worker of
    ``[validate, prioritise, plan, execute]`` runs ``validate+prioritise+plan``);
    ``fuse=False`` (``SEP_FUSION=0``) runs every stage on its own.
    """
    wanted = [s for s in topology.stages if stages is None or s.name in stages]
    names = {s.name for s in wanted}
    runs: list[list[str]] = []
    for chain in topology.fusion if fuse else ():
        for present, members in itertools.groupby(chain, key=lambda name: name in names):
            run = list(members)
            if present and len(run) > 1:
                runs.append(run)
    in_run = {name: run for run in runs for name in run}
    groups: list[list[StageSpec]] = []
    for spec in wanted:
        fused = in_run.get(spec.name)
        if fused is None:
            groups.append([spec])
        elif fused[0] == spec.name:
            groups.append([topology.stage(name) for name in fused])
    return groups


def handoff_topics(chain: Sequence[StageSpec]) -> list[str]:
    """The topic each stage of ``chain`` hands to the next (one of the next one's inputs;
    any other input of a later stage is read from Kafka and given to that stage alone)."""
    out = []
    for before, after in itertools.pairwise(chain):
        handed = [t for t in after.inputs if t in before.outputs]
        if len(handed) != 1:
            raise FusionError(
                f"cannot fuse {before.name} -> {after.name}: {after.name} must "
                f"read exactly one topic that {before.name} writes"
            )
        out.append(handed[0])
    return out
