"""What a fused chain (``topology.yaml`` ``fusion:``) passes in memory, read off the stages'
declared inputs and outputs: the runtime (``pipeline.runtime.delivery.groups``) wires it,
``sep topology`` shows it.

Two kinds of edge, both still produced onto their declared topic (project, audit, replay and
any unfused reader see every record):

    hand-over  stage i ─► stage i+1   the one topic i+1 reads that i writes: given to i+1
                                      in the same pass
    feedback   stage j ─► stage i<j   a topic an earlier stage reads that a later one writes,
                                      every writer of it in the chain: kept in memory and
                                      given to stage i at the start of the next pass

The feedback edge of the declared chain is ``execute ─► plan`` on ``sep.executions``: the
planner's pending flow (``pipeline.stages.pending_flow``) hears the reports of the plans it
made without consuming them back from the broker (~4 records per intent). The runtime wires
feedback edges only with ``Settings.fusion_feedback`` (``SEP_FUSION_FEEDBACK=1``). An edge
exists only when every stage writing the topic is in the chain: otherwise records would arrive
on it that no pass of this chain made, and only Kafka has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.topology.models import StageSpec, Topology


@dataclass(frozen=True)
class FeedbackEdge:
    """``topic``, written by stage ``writer`` of a chain, read in memory by stage ``reader``
    (an earlier one, by index in the chain)."""

    topic: str
    writer: int
    reader: int


def handed_over(before: StageSpec, after: StageSpec) -> list[str]:
    """The topics ``after`` reads that ``before`` writes (fusable when exactly one)."""
    return [t for t in after.inputs if t in before.outputs]


def feedback_edges(chain: Sequence[StageSpec], topology: Topology) -> tuple[FeedbackEdge, ...]:
    """The feedback edges of ``chain`` (the stages one worker runs fused, in order)."""
    names = {spec.name for spec in chain}
    writers: dict[str, set[str]] = {}
    for spec in topology.stages:
        for topic in spec.outputs:
            writers.setdefault(topic, set()).add(spec.name)
    source = chain[0].inputs[0] if chain and chain[0].inputs else None
    edges: list[FeedbackEdge] = []
    for writer, spec in enumerate(chain):
        for topic in spec.outputs:
            if topic == source or not writers[topic] <= names:
                # The chain's source (its tables are partitioned by it), or a topic another
                # group also writes: read from Kafka as declared.
                continue
            for reader in range(writer):
                handed = handed_over(chain[reader - 1], chain[reader]) if reader else []
                if topic in chain[reader].inputs and topic not in handed:
                    edges.append(FeedbackEdge(topic, writer, reader))
    return tuple(edges)
