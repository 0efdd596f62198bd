"""Which stages a worker process runs, and whether it is a singleton's worker.

    stages=None            every stage that is not a singleton (the identical workers of
                           ``sep up``, one consumer group, partitions spread over them)
    stages=[runner]        a singleton stage's worker: a group of its own, every partition
                           to its oldest member (``pipeline.runtime.delivery.singleton``)
    stages=[a, b]          a process layout (a group of its own, see ``runtime.app``)

A list that mixes a singleton with other stages is refused: the other stages would be
pinned to one process, and a layout's usual range assignment would split the singleton.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.topology.models import Topology


class PlacementError(ValueError):
    """A worker asked for stages it cannot run together (or that do not exist)."""


@dataclass(frozen=True)
class Placement:
    stages: tuple[str, ...]
    """The stages this worker runs, in topology order."""
    singleton: bool
    """Every partition to one member of the group (the stages are all singletons)."""
    everything: bool
    """The default layout: every stage that is not a singleton (the topology's app id)."""


def place(topology: Topology, stages: Sequence[str] | None = None) -> Placement:
    singles = set(topology.singleton_stages)
    if stages is None:
        names = tuple(s.name for s in topology.stages if s.name not in singles)
        return Placement(names, singleton=False, everything=True)
    known = {s.name for s in topology.stages}
    unknown = sorted(set(stages) - known)
    if unknown:
        raise PlacementError(f"unknown stage(s) {unknown}; the topology has {sorted(known)}")
    wanted = set(stages)
    names = tuple(s.name for s in topology.stages if s.name in wanted)
    chosen_singles = wanted & singles
    if chosen_singles and chosen_singles != wanted:
        raise PlacementError(
            f"{sorted(chosen_singles)} must run in a worker of their own "
            f"(singleton stages), not with {sorted(wanted - singles)}"
        )
    everything = wanted == known - singles
    return Placement(names, singleton=bool(chosen_singles), everything=everything)


def process_niceness(topology: Topology, placement: Placement) -> int:
    """The niceness a worker running ``placement`` gives itself: the least of its stages'
    (``StageSpec.niceness``), so a process is nice only if every stage in it is."""
    return min((topology.stage(name).niceness for name in placement.stages), default=0)


def leaves_cores(topology: Topology, placement: Placement) -> bool:
    """Whether a worker running ``placement`` gathers its fetches while records flow
    (``Settings.fetch_gather_ms``): it runs none of the topology's nice stages, and some
    stage is nice.  Those stages run in processes of their own at a lower CPU priority
    (``sep up --layout split``) and get the cores only when this worker leaves them free; a
    fetch every few milliseconds instead of one per record that arrives is what leaves
    them free at a moderate rate (bench/RESULTS.md, Session 17)."""
    nice = {stage.name for stage in topology.stages if stage.niceness > 0}
    return bool(nice) and not nice & set(placement.stages)


SPLIT = "split"
"""``sep up --layout split``: see ``layout_of``."""
IDENTICAL = "identical"
"""``sep up --layout identical``: ``--workers`` identical processes, each running every stage
(but the singletons)."""


def default_layout(topology: Topology) -> str:
    """The layout ``sep up`` and the benchmarks start without ``--layout``: ``split`` when a
    stage declares a niceness (on two cores it meets issue 11's 500/s latency targets, which
    identical workers miss by 1.5-3x: bench/RESULTS.md, Session 18), else identical."""
    return SPLIT if any(s.niceness > 0 for s in topology.stages) else IDENTICAL


def resolve_layout(topology: Topology, spec: str | None, workers: int) -> tuple[str, ...]:
    """``--layout`` as given (None: ``default_layout``) as processes' stage lists; ``()``:
    identical workers (``identical`` or '')."""
    spec = default_layout(topology) if spec is None else spec
    return () if spec in (IDENTICAL, "") else layout_of(topology, spec, workers)


def layout_of(topology: Topology, spec: str, workers: int) -> tuple[str, ...]:
    """The worker processes of a layout given as ``sep up --layout`` takes it: stages per
    process, processes separated by ';' (``"ingest,validate;project"``), or ``split``:
    ``workers`` processes of the stages of niceness 0 and ``workers`` of the nicer ones
    (project), which then run at their lower priority.  Every process's stages are checked
    (``place``).  Each distinct list of stages is a consumer group of its own
    (``runtime.app.group_id``)."""
    if spec == SPLIT:
        placed = place(topology).stages
        first = [n for n in placed if topology.stage(n).niceness == 0]
        nice = [n for n in placed if topology.stage(n).niceness > 0]
        if not nice:
            raise PlacementError("layout 'split': no stage of the topology declares a niceness")
        return (",".join(first),) * workers + (",".join(nice),) * workers
    processes = tuple(p.strip() for p in spec.split(";") if p.strip())
    if not processes:
        raise PlacementError(f"layout {spec!r} names no stages")
    for process in processes:
        place(topology, [n.strip() for n in process.split(",")])
    return processes
