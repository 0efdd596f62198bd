"""``topology.yaml``'s ``lanes:`` section: one topic split into a topic per priority lane.

Under overload the backlog forms in front of the first stage that cannot keep up: the
fused chain, reading ``sep.intents.ingested`` in arrival order.  With lanes, ingest scores
every intent (the prioritise stage's scorer, batched) and writes its ``intent.submitted``
to the topic of its lane; the chain's runner takes each pass from the lanes by weight
(``pipeline.runtime.delivery.lanes``), so urgent intents overtake the routine backlog.

    lanes: {split: sep.intents.ingested, lanes: [fast 7-10, normal 4-6, bulk 1-3]}
      topics:  sep.intents.ingested  ─►  sep.intents.ingested.fast, .normal, .bulk
                                         (the split topic's partitions, key, retention)
      stages:  inputs/outputs naming sep.intents.ingested name the three lane topics

The expansion happens before validation (``expand``), so every reader of the split topic
(project, the strategy runner, the risk feed, replay, ``sep topology``, the validator)
reads the lane topics without knowing about lanes; no ``lanes:`` section is the single
topic of before.  It is idempotent: a topology dumped and validated again is unchanged.

At 5x overload ingest cannot keep up either, and its backlog waits unscored, in arrival
order.  ``submit:`` splits the input topic as well, but *beside* it: producers that know
the topology choose a lane with the transparent rule (``pipeline.priority.submit_lanes``)
and any other producer still writes the plain topic, read as the ``unlabelled`` lane:

    lanes: {submit: sep.intents.submitted, unlabelled: normal}
      topics:  sep.intents.submitted  +  sep.intents.submitted.fast, .normal, .bulk
      stages:  inputs/outputs naming sep.intents.submitted name the lane topics as well
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LaneSpec(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    priorities: tuple[Annotated[int, Field(ge=1, le=10)], Annotated[int, Field(ge=1, le=10)]]
    """The lowest and highest priority (1..10) the lane holds."""
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    """Its share of a pass against the other lanes with records queued."""
    min_share: Annotated[Decimal, Field(ge=0, lt=1, allow_inf_nan=False)] = Decimal(0)
    """The share of every pass it is guaranteed while it has records queued, whatever
    the other lanes hold (so a routine lane never starves)."""

    @model_validator(mode="after")
    def _ordered(self) -> LaneSpec:
        low, high = self.priorities
        if low > high:
            raise ValueError(f"lane {self.name!r}: priorities must be [lowest, highest]")
        return self


class LanesSpec(_Strict):
    enabled: bool = True
    """False: the section is checked but not applied (one topic, arrival order), so the
    lanes stay declared, ready to switch on (``sep bench overload`` does)."""
    split: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "sep.intents.ingested"
    """The topic split by lane; its lane topics are ``<split>.<lane>``."""
    lanes: Annotated[tuple[LaneSpec, ...], Field(min_length=2)]
    """Highest priorities first; together they cover 1..10, each priority once."""
    scheduled: tuple[str, ...] = ("validate",)
    """Stages whose group takes each pass from the lanes by weight (a fused chain's first
    stage).  Other readers of the lane topics (project, the strategy runner) take records
    in fetch order, so each intent's events reach them in the order they were written."""
    submit: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] | None = None
    """The input topic, split by lane as well (None: not split): its lane topics
    ``<submit>.<lane>`` are declared beside it (it stays: a producer that does not choose
    a lane writes it), and every stage naming it names them too.  Producers choose the
    lane from the submission alone (``pipeline.priority.submit_lanes``); ingest scores
    every intent again for the lane it waits in next, so the label only orders the wait
    in front of ingest.  Name ingest in ``scheduled`` to take its passes by lane."""
    unlabelled: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    """The lane a submission on the plain ``submit`` topic waits in before ingest (its
    weight and min_share; None: the lane of the middle priority, 5).  Ingest scores it
    like any other."""
    pass_budget_ms: Annotated[int, Field(ge=1, le=60_000)] | None = None
    """A pass is not preemptible (one event loop per worker): an urgent record waits for
    the pass in front of it.  Set, a scheduled group's passes are sized to take about this
    long (``pipeline.runtime.delivery.lanes.PassSizer``) as well as ``batch.max``; None:
    ``batch.max`` only.  Measured (``sep bench overload``, bench/RESULTS.md "Session 9"):
    a budget shortens urgent waits but costs the chain throughput (a pass's fixed cost is
    paid more often), so it is off by default.  Other groups in the same worker keep
    ``batch.max``: run ingest and project in processes of their own where urgent latency
    matters."""

    dedicated: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()
    """Lanes with workers of their own (``sep worker --lane NAME``; ``sep up`` starts one
    each): such a worker runs the scheduled stages and the stages fused after them on its
    lane's topics only, in a consumer group of its own, and the other workers leave those
    topics to it.  Why: a pass is not preemptible, so in a shared worker an urgent record
    waits for the routine pass in front of it (seconds under overload, whatever the lanes'
    weights); in a process of its own it waits only for the urgent records before it, and
    the operating system shares the cores between the processes (the harness starts the
    other workers at a lower priority, ``pipeline.runtime.lane_workers``)."""

    @model_validator(mode="after")
    def _cover(self) -> LanesSpec:
        names = [lane.name for lane in self.lanes]
        if len(set(names)) != len(names):
            raise ValueError(f"lane names must be unique: {names}")
        covered = [
            p for lane in self.lanes for p in range(lane.priorities[0], lane.priorities[1] + 1)
        ]
        if sorted(covered) != list(range(1, 11)):
            raise ValueError(
                "the lanes' priorities must cover 1..10, each priority once, highest lane "
                f"first; they cover {sorted(covered)}"
            )
        highs = [lane.priorities[1] for lane in self.lanes]
        if highs != sorted(highs, reverse=True):
            raise ValueError("lanes are listed highest priorities first")
        if sum(lane.min_share for lane in self.lanes) >= 1:
            raise ValueError("the lanes' min_share must add up to less than 1")
        if self.unlabelled is not None and self.unlabelled not in names:
            raise ValueError(f"unlabelled: {self.unlabelled!r} is not a lane of {names}")
        if self.submit is not None and self.submit == self.split:
            raise ValueError("submit and split must be different topics")
        unknown = [name for name in self.dedicated if name not in names]
        if unknown:
            raise ValueError(f"dedicated: {unknown} are not lanes of {names}")
        if len(set(self.dedicated)) != len(self.dedicated):
            raise ValueError(f"dedicated lanes must be unique: {list(self.dedicated)}")
        return self

    def topics_of_lane(self, lane: str) -> tuple[str, ...]:
        """The topics that hold ``lane``'s records: its lane of ``split``, and of ``submit``
        when the input topic is split too."""
        self.lane(lane)  # KeyError for a lane that does not exist
        submitted = (self.submit_topic_of(lane),) if self.submit is not None else ()
        return (self.topic_of(lane), *submitted)

    @property
    def unlabelled_lane(self) -> LaneSpec:
        """The lane a submission on the plain input topic waits in."""
        return self.lane(self.unlabelled) if self.unlabelled is not None else self.lane_of(5)

    def submit_topic_of(self, lane: str) -> str:
        """The input lane topic of ``lane`` (``submit`` must be set)."""
        if self.submit is None:
            raise ValueError("lanes.submit is not set: the input topic is not split")
        return f"{self.submit}.{lane}"

    @property
    def submit_topics(self) -> tuple[str, ...]:
        """The input lane topics, highest priorities first (() without ``submit``)."""
        if self.submit is None:
            return ()
        return tuple(self.submit_topic_of(lane.name) for lane in self.lanes)

    def topic_of(self, lane: str) -> str:
        return f"{self.split}.{lane}"

    @property
    def topics(self) -> tuple[str, ...]:
        """The lane topics, highest priorities first."""
        return tuple(self.topic_of(lane.name) for lane in self.lanes)

    def lane_of(self, priority: int) -> LaneSpec:
        for lane in self.lanes:
            if lane.priorities[0] <= priority <= lane.priorities[1]:
                return lane
        raise ValueError(f"priority {priority} is in no lane")

    def lane(self, name: str) -> LaneSpec:
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(name)

    def lane_of_topic(self, topic: str) -> str | None:
        prefix = self.split + "."
        if not topic.startswith(prefix):
            return None
        name = topic[len(prefix) :]
        return name if any(lane.name == name for lane in self.lanes) else None


def _get(item: Any, field: str) -> Any:
    return item.get(field) if isinstance(item, Mapping) else getattr(item, field, None)


def _replace(item: Any, field: str, value: Any) -> Any:
    if isinstance(item, Mapping):
        return {**item, field: value}
    return item.model_copy(update={field: value})


def expand(data: Any) -> Any:
    """The raw topology with the split topic replaced by its lane topics (see the module
    docstring); unchanged without a ``lanes:`` section."""
    if not isinstance(data, Mapping) or not data.get("lanes"):
        return data
    try:
        lanes = LanesSpec.model_validate(data["lanes"])
    except ValueError:
        return data  # reported at its own path by the model's validation
    if not lanes.enabled:
        return {**data, "lanes": None}
    # The split topic's place (in ``topics:`` and in each stage's lists) goes to the first
    # lane, the other lanes are appended: every YAML path of the file (``topics[3]``,
    # ``stages[project].inputs[1]``) still points at what it declared.
    first, rest = lanes.topics[0], lanes.topics[1:]
    topics = list(data.get("topics") or ())
    names = [_get(t, "name") for t in topics]
    if lanes.split in names:
        base = topics[names.index(lanes.split)]
        description = _get(base, "description") or ""
        for lane in lanes.lanes:
            name = lanes.topic_of(lane.name)
            copy = _replace(base, "name", name)
            copy = _replace(copy, "description", f"lane {lane.name}: {description}".strip(": "))
            if name == first:
                topics[names.index(lanes.split)] = copy
            elif name not in names:
                topics.append(copy)

    def swap(refs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        out = [first if ref == lanes.split else ref for ref in refs]
        return tuple(out + [t for t in rest if t not in out])

    def swapped(stage: Any) -> Any:
        if not isinstance(stage, Mapping | BaseModel):
            return stage  # not a stage: reported at its own path
        for field in ("inputs", "outputs"):
            refs = _get(stage, field)
            if isinstance(refs, list | tuple) and lanes.split in refs:
                stage = _replace(stage, field, swap(refs))
        return stage

    declared = list(data.get("stages") or ())
    stages = [swapped(s) for s in declared]
    if lanes.submit is not None:
        topics, stages = _beside(lanes.submit, lanes.submit_topics, topics, stages)
    expanded = {**data, "topics": topics, "stages": stages}
    if "fusion" in data:
        expanded["fusion"] = _cut_at_split(data["fusion"], lanes.split, declared)
    return expanded


def _cut_at_split(fusion: Any, split: str, stages: list[Any]) -> Any:
    """Fused chains cut where one stage writes the split topic and the next reads it (ingest
    ─► validate, as declared): the next stage reads its lanes from Kafka, a pass by weight
    (``lanes.scheduled``), so it starts a chain; a piece of one stage is no chain.  So
    switching lanes on is one line (``enabled: true``)."""
    if not isinstance(fusion, list | tuple):
        return fusion  # none, or not a list: reported at its own path
    writers = {
        _get(s, "name")
        for s in stages
        if isinstance(s, Mapping | BaseModel) and split in (_get(s, "outputs") or ())
    }
    cut: list[Any] = []
    for chain in fusion:
        if not isinstance(chain, list | tuple):
            cut.append(chain)
            continue
        pieces: list[list[Any]] = [[]]
        for name in chain:
            if pieces[-1] and pieces[-1][-1] in writers:
                pieces.append([])
            pieces[-1].append(name)
        cut += [piece for piece in pieces if len(piece) > 1] if len(pieces) > 1 else [chain]
    return cut


def _beside(
    plain: str, lane_topics: tuple[str, ...], topics: list[Any], stages: list[Any]
) -> tuple[list[Any], list[Any]]:
    """The input topic's lane topics appended after everything declared (copies of it), and
    to every stage list naming it: the plain topic stays where it was (unlabelled
    submissions), so every YAML path still points at what it declared."""
    names = [_get(t, "name") for t in topics]
    if plain in names:
        base = topics[names.index(plain)]
        description = _get(base, "description") or ""
        for name in lane_topics:
            if name not in names:
                lane = name[len(plain) + 1 :]
                copy = _replace(base, "name", name)
                topics.append(_replace(copy, "description", f"lane {lane}: {description}"))

    def swapped(stage: Any) -> Any:
        if not isinstance(stage, Mapping | BaseModel):
            return stage
        for field in ("inputs", "outputs"):
            refs = _get(stage, field)
            if isinstance(refs, list | tuple) and plain in refs:
                more = [t for t in lane_topics if t not in refs]
                stage = _replace(stage, field, (*refs, *more))
        return stage

    return topics, [swapped(s) for s in stages]
