"""The lanes' rows of the pipeline view and their ``/metrics`` lines, from workers' reports."""

from __future__ import annotations

from typing import Any

from pipeline.topology import load_topology
from ui.lanes import metric_lines, window_rows

TOPOLOGY = load_topology()
FAST, BULK = "sep.intents.ingested.fast", "sep.intents.ingested.bulk"


def lane(records: int, wait: float, **more: Any) -> dict[str, Any]:
    return {"queued": 0, "behind": 0, "records": records, "waitMsSum": wait} | more


def test_rates_and_mean_waits_are_taken_over_the_window_per_worker() -> None:
    old = {("w1", "chain"): {"lanes": {FAST: lane(100, 1000.0), BULK: lane(50, 9000.0)}}}
    new = {
        ("w1", "chain"): {
            "lanes": {
                FAST: lane(160, 1600.0, queued=2, waitMsMax=30.0),
                BULK: lane(70, 19000.0, behind=400, paused=True),
            }
        },
        # A worker that started inside the window counts from zero.
        ("w2", "chain"): {"lanes": {FAST: lane(40, 800.0)}},
    }
    rows = {row["name"]: row for row in window_rows(TOPOLOGY, new, old, span=10.0)}
    assert list(rows) == ["fast", "normal", "bulk"]
    assert rows["fast"]["recordsPerS"] == 10.0  # (60 + 40) / 10 s
    assert rows["fast"]["meanWaitMs"] == (600.0 + 800.0) / 100
    assert (rows["fast"]["queued"], rows["fast"]["waitMsMax"]) == (2, 30.0)
    assert rows["bulk"]["meanWaitMs"] == 10000.0 / 20
    assert (rows["bulk"]["behind"], rows["bulk"]["paused"]) == (400, True)
    assert rows["normal"]["recordsPerS"] == 0.0
    assert rows["normal"]["meanWaitMs"] is None  # nothing taken: no wait to show


def test_metrics_have_one_sample_per_lane_and_family() -> None:
    workers = {"w1": {"groups": {"chain": {"lanes": {FAST: lane(7, 70.0, paused=False)}}}}}
    lines = metric_lines(TOPOLOGY, workers)
    assert 'sep_lane_records_total{lane="fast"} 7' in lines
    assert 'sep_lane_wait_ms_total{lane="fast"} 70.0' in lines
    assert 'sep_lane_records_total{lane="bulk"} 0' in lines
    assert 'sep_lane_paused{lane="fast"} 0' in lines
    assert metric_lines(TOPOLOGY.model_copy(update={"lanes": None}), workers) == []
