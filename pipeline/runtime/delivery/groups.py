"""Stage groups: the unit the runtime schedules, one stage or several fused stages.

A group's first stage reads its input topics from Kafka.  When ``topology.yaml`` fuses
neighbouring stages (``fusion:``), each next stage of the group reads the previous stage's
output topic *in memory*: the outputs are still produced onto their declared topic (project,
audit and replay see no difference), and the same records, with the partition the producer
is told to use, are handed to the next stage in the same pass.  The model is Kafka Streams'
sub-topologies and Flink's operator chaining.

A later stage's output that an earlier stage of the group reads, when the group holds every
writer of it, can be fed back in memory (``pipeline.topology.fusion``; only with
``SEP_FUSION_FEEDBACK=1``, otherwise it is read from Kafka as declared): the records are kept
and given to the earlier stage at the start of the group's next pass, whenever they were
emitted (in the pass, or later), and the group does not consume the topic from Kafka.

    Kafka sep.intents.ingested ─► validate ─► prioritise ─► plan ─► execute ─► Kafka
                                     │ memory      │ memory    │ memory ▲ │  sep.executions
                                     ▼             ▼           ▼        └─┘ (feedback on:
                                                                       memory, next pass)
                          Kafka sep.intents.validated, sep.intents.prioritised, sep.plans
                          (still produced)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.ops import kafka_partition
from pipeline.runtime.delivery.tables import ChangelogTable, Table
from pipeline.stages.base import StageProcessor
from pipeline.topology.fusion import FeedbackEdge, handed_over
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
    _writing: tuple[int, list[ChangelogTable]] = field(
        default=(0, []), init=False, repr=False, compare=False
    )

    @property
    def writing_tables(self) -> list[ChangelogTable]:
        """The tables whose writes the runner sends (a sourced table writes nothing).

        Asked at every output, so kept until a table is added: tables are only ever
        appended (the strategy runner adds one for a strategy it loads, mid-pass)."""
        count, writing = self._writing
        if count != len(self.tables):
            writing = [t for t in self.tables if isinstance(t, ChangelogTable)]
            self._writing = (len(self.tables), writing)
        return writing


@dataclass
class StageGroup:
    nodes: list[StageNode]
    handoff: list[str]
    """``handoff[i]``: the topic stage i hands to stage i+1 in memory."""
    partitions: Mapping[str, int]
    """Partition count of every topic (to place handed-over records)."""
    feedback: tuple[FeedbackEdge, ...] = ()
    """Topics a later stage writes and an earlier one reads, in memory (not from Kafka)."""

    @property
    def name(self) -> str:
        return "+".join(n.spec.name for n in self.nodes)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The topics this group reads from Kafka."""
        topics: list[str] = []
        for index in range(len(self.nodes)):
            topics += [t for t in self.kafka_inputs_of(index) if t not in topics]
        return tuple(topics)

    def kafka_inputs_of(self, index: int) -> tuple[str, ...]:
        """The topics stage ``index`` of the group reads from Kafka directly."""
        spec = self.nodes[index].spec
        in_memory = {edge.topic for edge in self.feedback if edge.reader == index}
        if index:
            in_memory.add(self.handoff[index - 1])
        return tuple(t for t in spec.inputs if t not in in_memory)

    def fed_back_from(self, index: int) -> dict[str, tuple[int, ...]]:
        """The topics stage ``index`` writes that earlier stages read in memory, and which."""
        found: dict[str, tuple[int, ...]] = {}
        for edge in self.feedback:
            if edge.writer == index:
                found[edge.topic] = (*found.get(edge.topic, ()), edge.reader)
        return found

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
        handed = handed_over(before, after)
        if len(handed) != 1:
            raise FusionError(
                f"cannot fuse {before.name} -> {after.name}: {after.name} must "
                f"read exactly one topic that {before.name} writes"
            )
        out.append(handed[0])
    return out
