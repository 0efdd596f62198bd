"""The priority lanes as the operator sees them: ``/metrics`` lines and the pipeline view's rows.

Each worker running the lane-scheduled chain reports per lane (``pipeline.store.
worker_health``, written by ``pipeline.runtime.delivery.kafka``):

    queued     records fetched and waiting in the worker for a pass
    behind     records in Kafka not fetched yet (a paused routine lane's backlog is here)
    records    records taken into passes (a counter: throughput is its rate)
    waitMsSum  their waits, ingest's write -> the pass (a counter: mean wait = its rate /
               the records' rate)
    waitMsMax  the longest wait since the worker's last report
    paused     the worker has stopped fetching the lane (more is queued than a pass takes)
"""

from __future__ import annotations

from typing import Any

from pipeline.store import worker_health
from pipeline.topology.models import Topology


def lane_name(topology: Topology, topic: str) -> str:
    lanes = topology.lanes
    name = lanes.lane_of_topic(topic) if lanes is not None else None
    return name or topic


def metric_lines(topology: Topology, workers: dict[str, dict[str, Any]]) -> list[str]:
    """Prometheus families, one sample per lane (none without ``lanes:``)."""
    lanes = worker_health.lanes(workers)
    if topology.lanes is None:
        return []
    families = (
        ("sep_lane_queued", "gauge", "queued", "Records fetched and queued in the workers."),
        ("sep_lane_behind", "gauge", "behind", "Records in Kafka the workers have not fetched."),
        ("sep_lane_records_total", "counter", "records", "Records taken into passes."),
        (
            "sep_lane_wait_ms_total",
            "counter",
            "waitMsSum",
            "Sum of the taken records' waits, ingest's write to their pass, in ms.",
        ),
        ("sep_lane_wait_ms_max", "gauge", "waitMsMax", "Longest wait since the last reports."),
        ("sep_lane_paused", "gauge", "paused", "1 if a worker has paused fetching the lane."),
    )
    lines: list[str] = []
    for name, kind, field, text in families:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for lane in topology.lanes.lanes:
            state = lanes.get(topology.lanes.topic_of(lane.name), {})
            value = state.get(field, 0)
            lines.append(
                f'{name}{{lane="{lane.name}"}} {int(value) if field == "paused" else value}'
            )
    return lines


def window_rows(
    topology: Topology,
    new: dict[tuple[str, str], dict[str, Any]],
    old: dict[tuple[str, str], dict[str, Any]],
    span: float,
) -> list[dict[str, Any]]:
    """The pipeline view's lanes: now (queued, behind, paused) and over the window (records/s,
    mean wait), from two samples of every worker's groups (``(worker, group) -> state``)."""
    if topology.lanes is None:
        return []
    rows = []
    for lane in topology.lanes.lanes:
        topic = topology.lanes.topic_of(lane.name)
        row: dict[str, Any] = {
            "name": lane.name,
            "topic": topic,
            "priorities": list(lane.priorities),
            "weight": lane.weight,
            "minShare": float(lane.min_share),
            "queued": 0,
            "behind": 0,
            "paused": False,
            "waitMsMax": 0.0,
        }
        records = wait = 0.0
        for key, state in new.items():
            now = state.get("lanes", {}).get(topic)
            if now is None:
                continue
            row["queued"] += now.get("queued", 0)
            row["behind"] += now.get("behind", 0)
            row["paused"] |= bool(now.get("paused"))
            row["waitMsMax"] = max(row["waitMsMax"], now.get("waitMsMax", 0.0))
            before = old.get(key, {}).get("lanes", {}).get(topic, {})
            records += max(0, now.get("records", 0) - before.get("records", 0))
            wait += max(0.0, now.get("waitMsSum", 0.0) - before.get("waitMsSum", 0.0))
        row["recordsPerS"] = records / span if span else None
        row["meanWaitMs"] = wait / records if records else None
        rows.append(row)
    return rows
