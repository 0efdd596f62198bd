"""The consumer group a worker joins: one per process layout."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.topology.models import Topology


def group_id(topology: Topology, stages: Sequence[str] | None = None) -> str:
    """The consumer group (app id) of a worker running ``stages``.

    Workers running every stage (but the singletons, which always run on their own) share
    the topology's app id.  A worker running a subset (a process layout such as "project in
    its own process", or a singleton stage) gets a group of its own: every member of a group
    must read the same topics, and a separate group still receives every record of the
    topics it reads.
    """
    everyone = {s.name for s in topology.stages if not s.singleton}
    if stages is None or set(stages) == everyone:
        return topology.app.id
    ordered = [s.name for s in topology.stages if s.name in stages]
    return f"{topology.app.id}-{'-'.join(ordered)}"
