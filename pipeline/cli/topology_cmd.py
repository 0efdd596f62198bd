"""``sep topology``: the pipeline graph, as the topology declares it."""

from __future__ import annotations

import argparse
import itertools
from typing import TYPE_CHECKING

from pipeline.cli.common import add_topology_option, examples, topology_of
from pipeline.config import Settings
from pipeline.topology.fusion import feedback_edges, handed_over
from pipeline.topology.models import Topology

if TYPE_CHECKING:
    from pipeline.cli.common import SubParsers


def render_topology(topology: Topology, *, feedback: bool = False) -> str:
    """The graph; ``feedback``: whether fused feedback edges run in memory
    (``Settings.fusion_feedback``)."""
    producers: dict[str, list[str]] = {t.name: [] for t in topology.topics}
    consumers: dict[str, list[str]] = {t.name: [] for t in topology.topics}
    for stage in topology.stages:
        for name in stage.inputs:
            consumers[name].append(stage.name)
        for name in stage.outputs:
            producers[name].append(stage.name)
    lines = [f"app {topology.app.id!r} (mode {topology.app.mode})", "", "stages:"]
    for stage in topology.stages:
        outputs = ", ".join(stage.outputs) or "(stores)"
        lines.append(f"  {stage.name:<11} {', '.join(stage.inputs)} -> {outputs}")
        lines.append(
            f"  {'':<11} fn {stage.function}  concurrency {stage.concurrency}  "
            f"batch {stage.batch.max}/{stage.batch.within_ms}ms"
            + ("  singleton (a process of its own, every partition)" if stage.singleton else "")
            + (
                f"  niceness {stage.niceness} (in a process of its own: `sep up --layout split`)"
                if stage.niceness
                else ""
            )
        )
    lines += ["", "topics:"]
    for topic in topology.topics:
        # The input topic is written by the strategy runner and by anyone else.
        writers = producers[topic.name]
        if topic.name == topology.stages[0].inputs[0] and writers:
            writers = [*writers, "external producers"]
        who_in = ", ".join(writers) or "external producers"
        who_out = ", ".join(consumers[topic.name]) or "nobody in the pipeline"
        lines.append(
            f"  {topic.name:<28} {topic.partitions:>3} partitions, key {topic.key:<16} "
            f"{who_in} -> {who_out}"
        )
    lines += _fusion_lines(topology, feedback)
    venues = [n for n, u in topology.plugins.venues.items() if u.enabled]
    strategies = [n for n, u in topology.plugins.strategies.items() if u.enabled]
    lines += [
        "",
        f"venues: {', '.join(venues) or 'none'}",
        f"strategies: {', '.join(strategies) or 'none'}",
        f"assets: {', '.join(a.symbol for a in topology.assets)}",
    ]
    if topology.lanes is not None:
        spec = topology.lanes
        lines.append(
            f"lanes: {spec.split} split by priority, passes of "
            f"{', '.join(spec.scheduled)} by weight"
            + (f" within {spec.pass_budget_ms} ms" if spec.pass_budget_ms else "")
        )
        lines += [
            f"  {lane.name:<8} priorities {lane.priorities[0]}-{lane.priorities[1]}, "
            f"weight {lane.weight}" + (f", min share {lane.min_share}" if lane.min_share else "")
            for lane in spec.lanes
        ]
    return "\n".join(lines)


def _fusion_lines(topology: Topology, feedback: bool) -> list[str]:
    """Each fused chain and what it passes in memory (a worker running all of it)."""
    if not topology.fusion:
        return []
    lines = ["", "fusion (one pass, one consumer group; every topic still produced):"]
    for names in topology.fusion:
        chain = [topology.stage(name) for name in names]
        lines.append(f"  [{', '.join(names)}]")
        for before, after in itertools.pairwise(chain):
            for topic in handed_over(before, after):
                lines.append(f"    handed over  {before.name} -> {after.name}: {topic}")
        for edge in feedback_edges(chain, topology):
            writer, reader = chain[edge.writer].name, chain[edge.reader].name
            lines.append(
                f"    fed back     {writer} -> {reader}: {edge.topic} "
                f"(in memory, next pass; {reader} does not consume it from Kafka here)"
                if feedback
                else f"    feedback     {writer} -> {reader}: {edge.topic} "
                f"(read from Kafka; SEP_FUSION_FEEDBACK=1: in memory)"
            )
    return lines


def _cmd_topology(args: argparse.Namespace) -> int:
    print(render_topology(topology_of(args), feedback=Settings().fusion_feedback))
    return 0


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "topology",
        help="print the pipeline graph from topology.yaml",
        description="Validate topology.yaml and print its stages and topics: "
        "who produces and who consumes each topic.",
        **examples(
            "sep topology",
            "sep topology --topology my-topology.yaml   (check a file before deploying it)",
        ),
    )
    add_topology_option(p)
    p.set_defaults(handler=_cmd_topology)
