"""What a fused chain passes in memory: hand-overs to the next stage, and the feedback of a
later stage's output to an earlier reader (execute's reports to plan's pending flow)."""

from __future__ import annotations

from typing import Any

from pipeline.topology import Topology, load_topology
from pipeline.topology.fusion import FeedbackEdge, feedback_edges, handed_over
from tests.topology.test_models import minimal


def chain_of(topology: Topology, *names: str) -> list[Any]:
    return [topology.stage(name) for name in names]


def test_the_declared_chain_feeds_executions_back_from_execute_to_plan() -> None:
    topology = load_topology()
    chain = chain_of(topology, "validate", "prioritise", "plan", "execute")
    assert feedback_edges(chain, topology) == (FeedbackEdge("sep.executions", writer=3, reader=2),)
    assert handed_over(chain[2], chain[3]) == ["sep.plans"]
    # The declared contract stays: plan still names the topic (unfused, it reads it from Kafka).
    assert "sep.executions" in topology.stage("plan").inputs


def test_a_chain_without_the_writer_reads_the_topic_from_kafka() -> None:
    topology = load_topology()
    # A planner-only worker (execute runs elsewhere) and a lone stage: nothing fed back.
    assert feedback_edges(chain_of(topology, "validate", "prioritise", "plan"), topology) == ()
    assert feedback_edges(chain_of(topology, "plan"), topology) == ()


def test_a_topic_another_group_also_writes_is_not_fed_back() -> None:
    # b writes fb, which a reads; c, outside the chain, writes fb too: only Kafka has c's.
    stages = [
        {"name": "a", "function": "m:f", "inputs": ["in", "fb"], "outputs": ["mid"]},
        {"name": "b", "function": "m:f", "inputs": ["mid"], "outputs": ["fb"]},
        {"name": "c", "function": "m:f", "inputs": ["in"], "outputs": ["fb"]},
    ]
    topics = [{"name": n, "partitions": 2, "key": "k"} for n in ("in", "mid", "fb")]
    alone = Topology.model_validate(minimal(topics=topics, stages=stages[:2]))
    shared = Topology.model_validate(minimal(topics=topics, stages=stages))
    assert feedback_edges(chain_of(alone, "a", "b"), alone) == (FeedbackEdge("fb", 1, 0),)
    assert feedback_edges(chain_of(shared, "a", "b"), shared) == ()
