"""Consumer-group offsets handed over from one process layout to another.

Each process layout has consumer groups of its own (``runtime.app.group_id``): identical
workers join the app id's group; ``--layout split`` joins one for the execution path and one
for project.  A group that has never committed reads every partition from its beginning
(nothing may be missed), so a stack with history started in another layout would run every
record of every topic through its stages again: harmless, as any redelivery, but slow.

``hand_over`` runs before a layout's workers start.  A group of the layout that has committed
nothing takes, for each partition of a topic it reads, the least offset committed there by
the groups of the other known layouts (identical workers, ``split``) that ran the same stages
on that topic:

    the new group's stages reading topic t   must all have been run, on t, by groups with an
                                             offset committed on the partition; it takes the
                                             least of those groups' offsets (every record
                                             before it was done by each stage of the old ones)

A topic not covered so is left to be read from its beginning, as before.  Going back and
forth works the same way; a group that has committed anything keeps what it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient

from pipeline.runtime.app import group_id
from pipeline.runtime.delivery.groups import handoff_topics, plan_groups
from pipeline.runtime.placement import SPLIT, PlacementError, layout_of
from pipeline.topology.fusion import feedback_edges
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]
"""(topic, partition) -> the next offset to read."""


@dataclass(frozen=True)
class GroupReads:
    """A consumer group of a layout: which of its stages read each topic."""

    group: str
    readers: Mapping[str, frozenset[str]]
    """topic -> the group's stages that read it."""


def layout_groups(
    topology: Topology, layout: Sequence[str], *, fuse: bool = True, feedback: bool = False
) -> list[GroupReads]:
    """The consumer groups of ``layout`` (``()``: identical workers, every stage but the
    singletons, which run in groups of their own and are never handed over), with what
    their stages read from Kafka: a fused stage's hand-over and feedback topics are not
    (``fuse``, ``feedback``: ``SEP_FUSION``, ``SEP_FUSION_FEEDBACK``)."""
    every = tuple(s.name for s in topology.stages if not s.singleton)
    processes = {tuple(p.split(",")) for p in layout} if layout else {every}
    groups = []
    for stages in sorted(processes):
        readers: dict[str, set[str]] = {}
        for chain in plan_groups(topology, stages, fuse=fuse):
            handed = handoff_topics(chain)
            fed = (
                {(e.topic, e.reader) for e in feedback_edges(chain, topology)}
                if feedback
                else set()
            )
            for i, spec in enumerate(chain):
                for topic in spec.inputs:
                    if (i and topic == handed[i - 1]) or (topic, i) in fed:
                        continue  # in memory, never consumed
                    readers.setdefault(topic, set()).add(spec.name)
        name = group_id(topology, None if stages == every else stages)
        groups.append(GroupReads(name, {t: frozenset(s) for t, s in readers.items()}))
    return groups


def known_layouts(topology: Topology) -> list[tuple[str, ...]]:
    """The layouts ``sep up`` starts by name: identical workers, and ``split`` when the
    topology has a nice stage (the worker count does not change the groups)."""
    layouts: list[tuple[str, ...]] = [()]
    with contextlib.suppress(PlacementError):  # no nice stage: no split layout
        layouts.append(layout_of(topology, SPLIT, 1))
    return layouts


def handed_offsets(target: GroupReads, sources: Sequence[tuple[GroupReads, Offsets]]) -> Offsets:
    """What ``target`` takes from ``sources`` (each group with its committed offsets)."""
    out: Offsets = {}
    partitions = {tp for _, committed in sources for tp in committed if tp[0] in target.readers}
    for tp in sorted(partitions):
        topic = tp[0]
        covering = [
            (source, committed[tp])
            for source, committed in sources
            if tp in committed and source.readers.get(topic)
        ]
        ran = set().union(*(source.readers[topic] for source, _ in covering))
        if covering and target.readers[topic] <= ran:
            out[tp] = min(offset for _, offset in covering)
    return out


async def hand_over(
    kafka: str,
    topology: Topology,
    layout: Sequence[str],
    *,
    fuse: bool = True,
    feedback: bool = False,
    within_s: float = 30.0,
) -> dict[str, Offsets]:
    """Commit, for each group of ``layout`` that has committed nothing, the offsets it takes
    from the other known layouts' groups (``handed_offsets``); what each group got."""
    targets = layout_groups(topology, layout, fuse=fuse, feedback=feedback)
    names = {t.group for t in targets}
    others = {
        g.group: g
        for other in known_layouts(topology)
        for g in layout_groups(topology, other, fuse=fuse, feedback=feedback)
        if g.group not in names
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    deadline = time.monotonic() + within_s
    try:
        committed = {name: await _committed(admin, name, deadline) for name in [*names, *others]}
    finally:
        await admin.close()
    sources = [(group, committed[name]) for name, group in others.items() if committed[name]]
    handed: dict[str, Offsets] = {}
    for target in targets:
        if committed[target.group] or not sources:
            continue
        offsets = handed_offsets(target, sources)
        if offsets:
            await commit_offsets(kafka, target.group, offsets, within_s=within_s)
            handed[target.group] = offsets
            log.info(
                "consumer group offsets handed over",
                extra={
                    "group": target.group,
                    "from": sorted(g.group for g, _ in sources),
                    "partitions": len(offsets),
                },
            )
    return handed


async def _committed(admin: AIOKafkaAdminClient, group: str, deadline: float) -> Offsets:
    """``group``'s committed offsets.  A fresh broker has no coordinator until its offsets
    topic exists (the first look creates it): asked again until ``deadline``."""
    from aiokafka.errors import (
        CoordinatorLoadInProgressError,
        CoordinatorNotAvailableError,
        NotCoordinatorError,
    )

    while True:
        try:
            found = await admin.list_consumer_group_offsets(group)
            break
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    return {(tp.topic, tp.partition): meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def commit_offsets(kafka: str, group: str, offsets: Offsets, *, within_s: float) -> None:
    """Commit ``offsets`` for ``group`` without joining it.  The broker refuses while the group
    has members (workers killed a moment ago stay members until their session times out):
    retried until it takes them, for up to ``within_s``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import (
        CommitFailedError,
        IllegalGenerationError,
        RebalanceInProgressError,
        UnknownMemberIdError,
    )

    refused = (
        CommitFailedError,
        IllegalGenerationError,
        RebalanceInProgressError,
        UnknownMemberIdError,
    )
    deadline = time.monotonic() + within_s
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            by_tp = {TopicPartition(t, p): offset for (t, p), offset in offsets.items()}
            consumer.assign(list(by_tp))
            await consumer.commit(by_tp)
            return
        except refused:
            if time.monotonic() > deadline:
                raise
        finally:
            await consumer.stop()
        await asyncio.sleep(0.5)
