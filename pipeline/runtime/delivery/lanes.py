"""Passes taken from priority lanes: how many records of each lane, how big, what to pause.

Pure decisions, no I/O (``runner.LaneQueues`` keeps the queues, ``kafka.py`` pauses the
consumer), so the policy is tested on its own:

    queued per lane [fast 12, normal 900, bulk 4000], a pass of 100 records
      allocate:   min shares first (normal 10, bulk 10), the rest by weight among the lanes
                  that still have records (fast 8 : normal 2 : bulk 1, water-filled: what a
                  lane cannot use goes to the others)        -> [12, 59, 29]
      pass order: highest lane first, each lane in fetch order
      pause:      a lane below the first with more queued than a pass takes -> normal, bulk
                  (the consumer stops fetching them, so fetches keep bringing urgent records;
                  Kafka holds the routine backlog, not this worker's memory)

A pass is not preemptible (one event loop per worker), so an urgent record waits for the
pass in front of it: ``PassSizer`` sizes each pass to a time budget from the measured time
per record, as well as to ``batch.max``.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.topology.models import Topology


@dataclass(frozen=True)
class Lane:
    topic: str
    weight: int
    min_share: float


@dataclass(frozen=True)
class LanePolicy:
    """What a worker's runtime needs of ``topology.yaml``'s ``lanes:``."""

    lanes: tuple[Lane, ...]
    """Highest first."""
    scheduled: frozenset[str]
    """Stages whose group takes passes by lane (the group's first stage is named here)."""
    budget_s: float
    """Every pass of a worker running a scheduled group is sized to about this long."""


def policy_of(topology: Topology) -> LanePolicy | None:
    """The topology's lane policy (None: no ``lanes:``)."""
    spec = topology.lanes
    if spec is None:
        return None
    lanes = tuple(
        Lane(spec.topic_of(lane.name), lane.weight, float(lane.min_share)) for lane in spec.lanes
    )
    return LanePolicy(lanes, frozenset(spec.scheduled), spec.pass_budget_ms / 1000)


def allocate(queued: Sequence[int], lanes: Sequence[Lane], capacity: int) -> list[int]:
    """Records to take from each lane (same order as ``lanes``) for a pass of at most
    ``capacity``: every lane with records gets its ``min_share`` of the pass (at least one
    record), then what is left goes by weight to the lanes that still have records."""
    take = [0] * len(lanes)
    left = max(capacity, 0)
    for i, lane in enumerate(lanes):
        if lane.min_share > 0 and queued[i] > 0 and left > 0:
            take[i] = min(queued[i], max(1, int(lane.min_share * capacity)), left)
            left -= take[i]
    while left > 0:
        active = [i for i in range(len(lanes)) if queued[i] > take[i]]
        if not active:
            break
        weights = sum(lanes[i].weight for i in active)
        given = 0
        for i in active:  # highest lane first: it gets the rounding
            share = max(1, (left * lanes[i].weight) // weights)
            more = min(share, queued[i] - take[i], left - given)
            take[i] += more
            given += more
        left -= given
    return take


def to_pause(queued: Sequence[int], lanes: Sequence[Lane], capacity: int) -> set[str]:
    """The lane topics to stop fetching: every lane but the first while more of it is queued
    than a whole pass takes (its records would only wait here; in Kafka they wait as well,
    and fetches bring the first lane's records instead).  The first lane is never paused:
    when it alone exceeds the worker, the fetch loop's bound on open batches holds it."""
    return {lane.topic for i, lane in enumerate(lanes) if i > 0 and queued[i] > max(capacity, 1)}


class PassSizer:
    """A pass's record count for a time budget, from the measured time per record.

    The time is the pass's wall time: the runner starts its next pass only when this one has
    finished, and much of a chain pass is spent off the event loop (routing runs in threads,
    ``pipeline/stages/batch_threads.py``), so wall time is what an urgent record waits for.
    The estimate is the median of the last ``WINDOW`` passes' seconds per record: a machine
    shared with other work stalls a process now and then (measured: a one-record pass that
    took 1 s among ones of 3 ms), and one such pass must not shrink the next ones to a record.
    A pass's fixed cost makes small passes look dear per record, so the size settles where a
    pass takes the budget, fixed cost included."""

    WINDOW = 15

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._samples: collections.deque[float] = collections.deque(maxlen=self.WINDOW)

    @property
    def per_record_s(self) -> float | None:
        if not self._samples:
            return None
        return statistics.median(self._samples)

    def capacity(self, batch_max: int) -> int:
        per_record = self.per_record_s
        if per_record is None or per_record <= 0:
            return batch_max
        return max(1, min(batch_max, int(self.budget_s / per_record)))

    def observe(self, records: int, seconds: float) -> None:
        if records > 0:
            self._samples.append(seconds / records)
