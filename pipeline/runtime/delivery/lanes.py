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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
    budget_s: float | None
    """A scheduled group's passes are sized to about this long (None: ``batch.max``)."""
    by_stage: Mapping[str, tuple[Lane, ...]] = field(default_factory=dict)
    """A scheduled stage's lanes where they are not ``lanes`` (ingest: the input lanes)."""

    def lanes_for(self, stage: str) -> tuple[Lane, ...]:
        """The lanes the group whose first stage is ``stage`` takes its passes from."""
        return self.by_stage.get(stage, self.lanes) if stage in self.scheduled else ()


def policy_of(topology: Topology) -> LanePolicy | None:
    """The topology's lane policy (None: no ``lanes:``).

    A scheduled stage reading the input lane topics (``lanes.submit``: ingest) takes its
    passes from them, the plain input topic counted as one more lane with the weight and
    share of the ``unlabelled`` lane, right after it (a backlog of unlabelled submissions
    is paused like a routine lane's):

        [submitted.fast 8, submitted.normal 2, submitted 2, submitted.bulk 1]   (ingest)
        [ingested.fast 8, ingested.normal 2, ingested.bulk 1]                   (validate)
    """
    spec = topology.lanes
    if spec is None:
        return None
    lanes = tuple(
        Lane(spec.topic_of(lane.name), lane.weight, float(lane.min_share)) for lane in spec.lanes
    )
    budget = None if spec.pass_budget_ms is None else spec.pass_budget_ms / 1000
    by_stage: dict[str, tuple[Lane, ...]] = {}
    if spec.submit is not None:
        inputs: list[Lane] = []
        for lane in spec.lanes:
            inputs.append(Lane(spec.submit_topic_of(lane.name), lane.weight, float(lane.min_share)))
            if lane.name == spec.unlabelled_lane.name:
                inputs.append(Lane(spec.submit, lane.weight, float(lane.min_share)))
        names = {s.name for s in topology.stages}
        for name in spec.scheduled:
            if name in names and spec.submit in topology.stage(name).inputs:
                by_stage[name] = tuple(inputs)
    return LanePolicy(lanes, frozenset(spec.scheduled), budget, by_stage)


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
    """A pass's record count for a time budget, from the passes measured so far.

    A pass takes ``fixed + per_record * n`` seconds of wall time (wall time: the runner starts
    its next pass only when this one has finished, and much of a chain pass is spent off the
    event loop, routing in threads, or waiting for the loop's other tasks).  Both terms are
    fitted by least squares over the last ``WINDOW`` passes.  The pass is sized to the budget:
    ``n = (budget - fixed) / per_record``; where the fixed cost alone eats most of the budget
    (measured on a busy machine: ~80 ms a pass, one record or fifty), to ``n = fixed /
    per_record`` instead, so a pass spends at least half its time on records: throughput at
    least half the worker's best, an urgent record's wait about two fixed costs.  (Sizing by
    time per record alone shrank such passes to one record and the chain to a tenth of its
    throughput: the urgent lane alone then exceeded it.)

    Fitting needs passes of different sizes; under a steady backlog every pass would be the
    same size, so successive passes vary around the size chosen (``JITTER``)."""

    WINDOW = 32
    JITTER = (1.0, 0.6, 1.0, 1.4)

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._samples: collections.deque[tuple[int, float]] = collections.deque(maxlen=self.WINDOW)
        self._turn = 0

    def fit(self) -> tuple[float, float] | None:
        """(fixed seconds, seconds per record), or None before there is enough to fit."""
        if not self._samples:
            return None
        ns = [n for n, _ in self._samples]
        ts = [t for _, t in self._samples]
        mean_n, mean_t = statistics.fmean(ns), statistics.fmean(ts)
        spread = sum((n - mean_n) ** 2 for n in ns)
        if len(set(ns)) >= 2 and spread > 0:
            slope = sum((n - mean_n) * (t - mean_t) for n, t in self._samples) / spread
            fixed = mean_t - slope * mean_n
            if slope > 0 and fixed >= 0:
                return fixed, slope
            if slope > 0:  # a negative intercept is noise: all of it per record
                return 0.0, statistics.median(t / n for n, t in self._samples)
        return 0.0, statistics.median(t / n for n, t in self._samples)

    def capacity(self, batch_max: int) -> int:
        fitted = self.fit()
        if fitted is None:
            return batch_max
        fixed, per_record = fitted
        if per_record <= 0:
            return batch_max
        room = max(self.budget_s - fixed, fixed)
        self._turn = (self._turn + 1) % len(self.JITTER)
        n = int(room / per_record * self.JITTER[self._turn])
        return max(1, min(batch_max, n))

    def observe(self, records: int, seconds: float) -> None:
        if records > 0:
            self._samples.append((records, seconds))
