"""The real stages of the topology, run in memory (no broker): the seam the backtest runtime
builds on.  Same processors, same fusion, same tables as the Kafka worker."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.runtime.delivery.memory import build_memory_runtime
from pipeline.samples import random_submission
from pipeline.stages.base import now_ms
from pipeline.topology import load_topology
from pipeline.topology.models import PluginUse, Topology

STAGES = ("ingest", "validate", "prioritise", "plan", "execute")


def sim_only() -> Topology:
    topology = load_topology()
    venues = dict(topology.plugins.venues)
    venues["uniswap_v3"] = PluginUse(enabled=False)  # no chain in a unit test
    return topology.model_copy(
        update={"plugins": topology.plugins.model_copy(update={"venues": venues})}
    )


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
async def test_intents_run_through_every_stage_in_memory(tmp_path: Path, fuse: bool) -> None:
    topology = sim_only()
    runtime, lifecycle = build_memory_runtime(
        topology, Settings(data_dir=tmp_path), STAGES, fuse=fuse
    )
    names = [r.name for r in runtime.runners]
    assert ("validate+prioritise+plan+execute" in names) is fuse
    await lifecycle.ensure_started()
    try:
        rng = random.Random(5)
        bodies = [
            random_submission(
                topology, rng, strategy_id="mem", client_intent_id=f"m{i}", venues=["sim"]
            )
            for i in range(20)
        ]
        for body in bodies:
            runtime.feed("sep.intents.submitted", b"mem", orjson.dumps(body))
        later = now_ms() + 1000
        for body in bodies[:3]:  # three duplicates: new records, same client ids
            runtime.feed("sep.intents.submitted", b"mem", orjson.dumps(body), later)
        await runtime.run_until_idle()
    finally:
        await lifecycle.stop()
    log = runtime.topics.log
    submitted = [
        decode_event(r.value) for topic in topology.stage("validate").inputs for r in log[topic]
    ]
    assert len(submitted) == 20  # the duplicates were dropped
    outcomes = [decode_event(r.value).topic for r in log["sep.executions"]]
    terminal = [t for t in outcomes if t in ("exec.completed", "exec.failed", "intent.expired")]
    rejected = [
        e
        for r in log["sep.intents.validated"]
        if (e := decode_event(r.value)).topic == "risk.rejected"
    ]
    planned_out = [
        e for r in log["sep.plans"] if (e := decode_event(r.value)).topic == "plan.rejected"
    ]
    # Every intent reached an end, and every event went onto its declared topic.
    assert len(terminal) + len(rejected) + len(planned_out) == 20
    assert outcomes.count("exec.completed") >= 15
    assert len(log["sep.intents.prioritised"]) == 20 - len(rejected)
    assert runtime.ledger.committable()  # every fetched offset settled
    assert runtime.fatal is None
