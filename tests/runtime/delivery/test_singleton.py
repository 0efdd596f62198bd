"""The singleton assignor: every partition to the oldest member, none to the others."""

from __future__ import annotations

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from pipeline.runtime.delivery.singleton import choose, singleton_assignor, started_of


class Cluster(ClusterMetadata):  # type: ignore[misc]
    def __init__(self, partitions: dict[str, int]) -> None:
        super().__init__()
        self._counts = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        n = self._counts.get(topic)
        return None if n is None else set(range(n))


TOPICS = ["sep.intents.ingested", "sep.executions", "sep.market.pools"]
CLUSTER = Cluster({"sep.intents.ingested": 8, "sep.executions": 8, "sep.market.pools": 1})


def members(*started: int) -> dict[str, ConsumerProtocolMemberMetadata]:
    return {f"runner-{i}": singleton_assignor(ns).metadata(TOPICS) for i, ns in enumerate(started)}


def test_one_member_gets_every_partition_of_every_topic() -> None:
    (assignment,) = singleton_assignor(5).assign(CLUSTER, members(5)).values()
    assert dict(assignment.assignment) == {
        "sep.executions": list(range(8)),
        "sep.intents.ingested": list(range(8)),
        "sep.market.pools": [0],
    }


def test_the_oldest_member_keeps_everything_when_a_standby_joins() -> None:
    # runner-0 started later but sorts first by id: age decides, not the id.
    group = members(300, 100, 200)
    assert choose(group) == "runner-1"
    result = singleton_assignor(300).assign(CLUSTER, group)
    sizes = {m: sum(len(p) for _, p in a.assignment) for m, a in result.items()}
    assert sizes == {"runner-0": 0, "runner-1": 17, "runner-2": 0}


def test_start_times_travel_in_the_user_data_and_foreign_data_sorts_last() -> None:
    own = singleton_assignor(123).metadata(TOPICS)
    assert started_of(own) == 123
    foreign = ConsumerProtocolMemberMetadata(0, TOPICS, b"")
    assert choose({"a": foreign, "b": own}) == "b"
    assert choose({"b": foreign, "a": ConsumerProtocolMemberMetadata(0, TOPICS, b"x")}) == "a"
