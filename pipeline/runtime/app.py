"""The consumer group a worker joins: one per process layout."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.runtime.lane_workers import lane_stages
from pipeline.topology.models import Topology


def group_id(
    topology: Topology, stages: Sequence[str] | None = None, lane: str | None = None
) -> str:
    """The consumer group (app id) of a worker running ``stages``.

    Workers running every stage (but the singletons, which always run on their own) share
    the topology's app id.  A worker running a subset (a process layout such as "project in
    its own process", or a singleton stage) gets a group of its own: every member of a group
    must read the same topics, and a separate group still receives every record of the
    topics it reads.

    A worker of a dedicated lane (``lane``, ``pipeline.runtime.lane_workers``) reads other
    topics than the rest, so its group is ``<app id>-lane-<lane>`` (and its stages, if a
    subset of the lane's).
    """
    base = topology.app.id if lane is None else f"{topology.app.id}-lane-{lane}"
    everyone = (
        {s.name for s in topology.stages if not s.singleton}
        if lane is None
        else set(lane_stages(topology))
    )
    if stages is None or set(stages) == everyone:
        return base
    ordered = [s.name for s in topology.stages if s.name in stages]
    return f"{base}-{'-'.join(ordered)}"
