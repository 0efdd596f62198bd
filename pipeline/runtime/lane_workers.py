"""Workers of their own for a priority lane (``lanes.dedicated`` in ``topology.yaml``).

A pass is not preemptible (one event loop per worker), so in a shared worker an urgent
record waits for the routine pass in front of it, however the lanes' weights share the
passes: under 5x overload that was ~1 s at p99 (bench/RESULTS.md, session 10).  A dedicated
lane has processes of its own instead:

    lanes: {dedicated: [fast], scheduled: [ingest, validate], submit: ..., split: ...}

      lane worker (`sep worker --lane fast`, group <app>-lane-fast)
          ingest          sep.intents.submitted.fast
          validate+…+execute  sep.intents.ingested.fast   (execute's reports to plan in memory)
      every other worker (group <app>, or its layout's)
          ingest          sep.intents.submitted, .normal, .bulk
          validate+…+execute  sep.intents.ingested.normal, .bulk
          project         everything, the fast lane's topics included

Each worker sees the topology through ``worker_view``: the scheduled stages' inputs keep
only the lane topics that worker serves; nothing else changes (ingest still writes each
intent to the lane its score gives, so an intent a producer labelled urgent and ingest
scores routine moves to the shared workers; project, the strategy runner and the risk
feed read every lane).  A lane worker feeds execute's reports back to plan in memory
(``topology.fusion``), so it reads no topic but its lane's.

The cores are the operating system's to share, and it shares them equally between busy
processes: a lane worker would get a few tenths of a core beside the broker, the stores and
the routine workers.  So the processes a harness starts for the routine lanes run at a
lower priority (``ROUTINE_NICENESS``, a niceness any user may set): under overload the lane
worker, the broker and the stores are served first and the routine backlog waits in Kafka;
with cores to spare, priorities change nothing.
"""

from __future__ import annotations

from pipeline.topology.models import Topology

ROUTINE_NICENESS = 10
"""How much lower the routine workers' priority is when the topology dedicates lanes
(``os.nice``; 10 is a CPU weight ~1/9 of a process at the default priority)."""


class LaneError(ValueError):
    """A worker asked for a lane the topology does not dedicate."""


def dedicated_lanes(topology: Topology) -> tuple[str, ...]:
    """The lanes with workers of their own (none without lanes, or lanes off)."""
    return topology.lanes.dedicated if topology.lanes is not None else ()


def lane_stages(topology: Topology) -> tuple[str, ...]:
    """What a lane worker runs: each scheduled stage with the stages fused after it."""
    lanes = topology.lanes
    if lanes is None:
        return ()
    names: list[str] = []
    for stage in lanes.scheduled:
        # A scheduled stage is a group's first stage: the rest of its fusion chain follows.
        chain = next((c for c in topology.fusion if stage in c), (stage,))
        names += [n for n in chain[chain.index(stage) :] if n not in names]
    order = [s.name for s in topology.stages]
    return tuple(sorted(names, key=order.index))


def worker_view(topology: Topology, lane: str | None = None) -> Topology:
    """The topology as a worker serving ``lane`` sees it (None: a worker of the shared,
    non-dedicated lanes): the scheduled stages read only the lane topics it serves."""
    dedicated = dedicated_lanes(topology)
    if lane is not None and lane not in dedicated:
        raise LaneError(
            f"lane {lane!r} has no workers of its own: lanes.dedicated is {list(dedicated)}"
        )
    if not dedicated:
        return topology
    lanes = topology.lanes
    assert lanes is not None
    if lane is None:  # the shared workers leave the dedicated lanes to theirs
        dropped = {t for name in dedicated for t in lanes.topics_of_lane(name)}
    else:  # a lane worker reads its lane's topics only (not the plain input either)
        every = {*lanes.topics, *lanes.submit_topics, *((lanes.submit,) if lanes.submit else ())}
        dropped = every - set(lanes.topics_of_lane(lane))
    stages = [
        spec.model_copy(update={"inputs": tuple(t for t in spec.inputs if t not in dropped)})
        if spec.name in lanes.scheduled
        else spec
        for spec in topology.stages
    ]
    for spec in stages:
        if not spec.inputs:
            raise LaneError(f"stage {spec.name!r} would read nothing in this worker")
    return topology.model_copy(update={"stages": tuple(stages)})
