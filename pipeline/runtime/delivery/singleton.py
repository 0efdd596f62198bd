"""A consumer-group assignor for singleton stages: every partition to one member.

A singleton stage (``StageSpec.singleton``, the strategy runner) must see every record of
its inputs, so its worker joins a group of its own and this assignor gives *all* the
partitions of every subscribed topic to one member, the oldest (the one that started
first; ties broken by member id).  Any other member gets nothing and waits: a hot standby
that takes over, through the ordinary rebalance, within the session timeout of the active
one dying (about 6 s after a kill -9, at once after a graceful stop, which leaves the group).

    members {m1: started 100, m2: started 250}  ──►  m1: every partition  m2: none

The oldest, not the first by member id: a standby joining must not take the partitions
from the worker that has them (that would be a needless hand-over and table recovery
every time one is started).  Each member puts its start time (ns) in the group protocol's
user data, which the group leader reads when it assigns.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger(__name__)

_STARTED = struct.Struct(">q")
"""User data: the member's start time, ns since the epoch (big-endian signed 64-bit)."""
_UNKNOWN = 2**63 - 1
"""A member whose user data is not ours (another assignor's version) sorts last."""


def started_of(metadata: ConsumerProtocolMemberMetadata) -> int:
    data = metadata.user_data
    if not isinstance(data, bytes | bytearray) or len(data) != _STARTED.size:
        return _UNKNOWN
    started: int = _STARTED.unpack(data)[0]
    return started


def choose(members: Mapping[str, ConsumerProtocolMemberMetadata]) -> str:
    """The member that gets everything: the oldest, then the smallest member id."""
    return min(members, key=lambda member: (started_of(members[member]), member))


def singleton_assignor(started_ns: int) -> type[AbstractPartitionAssignor]:
    """The assignor class one worker passes to its consumer (its start time baked in)."""

    class SingletonAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka is untyped here
        name = "sep-singleton"
        version = 0

        @classmethod
        def assign(
            cls,
            cluster: ClusterMetadata,
            members: Mapping[str, ConsumerProtocolMemberMetadata],
        ) -> dict[str, ConsumerProtocolMemberAssignment]:
            active = choose(members)
            topics: dict[str, list[int]] = {}
            for topic in sorted({t for m in members.values() for t in m.subscription}):
                partitions = cluster.partitions_for_topic(topic)
                if partitions is None:
                    log.warning("no partition metadata for topic %s", topic)
                    continue
                topics[topic] = sorted(partitions)
            log.info(
                "singleton assignment",
                extra={"active": active, "members": len(members), "topics": len(topics)},
            )
            return {
                member: ConsumerProtocolMemberAssignment(
                    cls.version, sorted(topics.items()) if member == active else [], b""
                )
                for member in members
            }

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(
                cls.version, list(topics), _STARTED.pack(started_ns)
            )

        @classmethod
        def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
            return None

    return SingletonAssignor
