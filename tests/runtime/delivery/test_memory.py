"""The real stages of the topology, run in memory (no broker): the seam the backtest runtime
builds on.  Same processors, same fusion, same tables as the Kafka worker."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.models.events import Event
from pipeline.runtime.delivery.memory import MemoryRuntime, build_memory_runtime
from pipeline.samples import random_submission
from pipeline.stages import base, plan
from pipeline.stages.base import now_ms
from pipeline.stages.plan import PlanStage
from pipeline.stages.report_digest import Report
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
    assert ("ingest+validate+prioritise+plan+execute" in names) is fuse
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


async def run_twenty(
    tmp_path: Path, *, fuse: bool = True, keep_changelogs: bool = True, wire: bool = False
) -> tuple[MemoryRuntime, int]:
    """Twenty intents through every stage; the runtime and how many records the stages
    decoded from bytes (``event_of`` without an event handed over, or the planner's
    execution reports read by ``report_digest``)."""
    topology = sim_only()
    runtime, lifecycle = build_memory_runtime(
        topology,
        Settings(data_dir=tmp_path),
        STAGES,
        fuse=fuse,
        keep_changelogs=keep_changelogs,
    )
    runtime.topics.wire = wire
    decoded = 0
    real = base.decode_event

    def counting(raw: bytes) -> Event:
        nonlocal decoded
        decoded += 1
        return real(raw)

    real_reports = plan.read_report

    def counting_reports(raw: bytes) -> Report | None:
        nonlocal decoded
        decoded += 1
        return real_reports(raw)

    await lifecycle.ensure_started()
    try:
        rng = random.Random(5)
        for i in range(20):
            body = random_submission(
                topology, rng, strategy_id="mem", client_intent_id=f"m{i}", venues=["sim"]
            )
            runtime.feed("sep.intents.submitted", b"mem", orjson.dumps(body))
        base.decode_event = counting
        plan.read_report = counting_reports
        try:
            await runtime.run_until_idle()
        finally:
            base.decode_event = real
            plan.read_report = real_reports
    finally:
        await lifecycle.stop()
    assert runtime.fatal is None
    return runtime, decoded


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
async def test_a_stage_reads_the_events_another_produced_without_decoding(
    tmp_path: Path, fuse: bool
) -> None:
    runtime, decoded = await run_twenty(tmp_path, fuse=fuse)
    assert len(runtime.topics.log["sep.executions"]) >= 20  # plan read them, as validate...
    assert decoded == 0  # ...and every unfused stage its input: handed over, not decoded
    # Once every reading group has had a record, only its bytes are kept (the log is the
    # run's whole history: an event object per record would stay on the heap).
    kept = [r for records in runtime.topics.log.values() for r in records if r.event is not None]
    assert kept == []


async def test_on_the_wire_a_group_decodes_what_it_reads_from_a_topic(tmp_path: Path) -> None:
    # As in a Kafka worker (``sep bench stages --wire``): the planner decodes execute's
    # reports, read back from their topic; within the chain (from ingest on), hand-overs
    # stay in memory.
    runtime, decoded = await run_twenty(tmp_path, wire=True)
    log = runtime.topics.log
    assert decoded == len(log["sep.executions"]) > 0
    assert [r for records in log.values() for r in records if r.event is not None] == []


async def test_changelog_records_are_kept_unless_not_wanted(tmp_path: Path) -> None:
    kept, _ = await run_twenty(tmp_path / "kept")
    dropped, _ = await run_twenty(tmp_path / "dropped", keep_changelogs=False)
    changelogs = {t for t in kept.topics.log if "changelog" in t}
    assert changelogs  # the stages' decisions, as a worker writes them
    assert not {t for t in dropped.topics.log if "changelog" in t}
    # Every event topic as it was (the ids differ: the runtime runs on the wall clock).
    counts = {t: len(log) for t, log in kept.topics.log.items() if t not in changelogs}
    assert {t: len(log) for t, log in dropped.topics.log.items()} == counts


async def planner_hearing(
    tmp_path: Path, *, fuse: bool, feedback: bool = True
) -> tuple[MemoryRuntime, list[str]]:
    """Two waves of ten intents; what the planner's pending flow was told, in order: each
    plan made (``add``), each report observed (its event type), and after each wave
    ``idle <n>`` (n: the reports on sep.executions by then)."""
    topology = sim_only()
    runtime, lifecycle = build_memory_runtime(
        topology, Settings(data_dir=tmp_path), STAGES, fuse=fuse, feedback=feedback
    )
    (planner,) = [p for p in lifecycle.processors if isinstance(p, PlanStage)]
    told: list[str] = []
    pending = planner.pending
    add, observe = pending.add, pending.observe

    def adding(*args: Any) -> None:
        told.append("add")
        add(*args)

    def observing(event: Event) -> None:
        if event.topic.startswith(("exec.", "intent.expired")):
            told.append(event.topic)
        observe(event)

    pending.add, pending.observe = adding, observing  # type: ignore[method-assign]
    await lifecycle.ensure_started()
    try:
        rng = random.Random(7)
        for wave in range(2):
            for i in range(10):
                body = random_submission(
                    topology,
                    rng,
                    strategy_id="mem",
                    client_intent_id=f"w{wave}-{i}",
                    venues=["sim"],
                )
                runtime.feed("sep.intents.submitted", b"mem", orjson.dumps(body))
            await runtime.run_until_idle()
            told.append(f"idle {len(runtime.topics.log['sep.executions'])}")
    finally:
        await lifecycle.stop()
    assert runtime.fatal is None
    return runtime, told


async def test_a_fused_planner_hears_its_executions_in_memory_as_unfused_from_the_topic(
    tmp_path: Path,
) -> None:
    fused, told_fused = await planner_hearing(tmp_path / "fused", fuse=True)
    unfused, told_unfused = await planner_hearing(tmp_path / "unfused", fuse=False)
    # Fused, the chain does not read sep.executions; execute still writes it for the others.
    chain = "ingest+validate+prioritise+plan+execute"
    assert {r.name: r.group.inputs for r in fused.runners}[chain] == ("sep.intents.submitted",)
    assert {r.name: r.group.inputs for r in unfused.runners}["plan"] == (
        "sep.intents.prioritised",
        "sep.executions",
    )
    reports = [decode_event(r.value).topic for r in fused.topics.log["sep.executions"]]
    assert "exec.completed" in reports
    first = next(i for i, t in enumerate(told_fused) if t.startswith("idle"))
    made = told_fused[:first].count("add")
    assert made >= 8
    assert told_fused[:first] == ["add"] * made
    wave_one = reports[: int(told_fused[first].split()[1])]
    # Fused: the first wave's reports wait in memory until the second wave's pass, which
    # hears them all, in the order execute produced them, before it plans anything.
    after = told_fused[first + 1 :]
    assert after[: len(wave_one)] == wave_one
    assert set(after[len(wave_one) : -1]) == {"add"}
    assert after[-1].startswith("idle")
    # Unfused, the planner reads them off the topic in a pass of their own, sooner: what it
    # has been told by the time it plans the second wave is the same.
    second = told_unfused.index("add", made)
    assert [t for t in told_unfused[:second] if not t.startswith("idle")] == [
        "add"
    ] * made + wave_one


async def test_without_the_feedback_switch_the_fused_chain_reads_executions_from_the_topic(
    tmp_path: Path,
) -> None:
    assert not Settings(data_dir=tmp_path).fusion_feedback  # off unless SEP_FUSION_FEEDBACK=1
    runtime, told = await planner_hearing(tmp_path, fuse=True, feedback=False)
    chain = {r.name: r.group for r in runtime.runners}["ingest+validate+prioritise+plan+execute"]
    assert chain.inputs == ("sep.intents.submitted", "sep.executions")
    assert chain.feedback == ()
    # Read back off the topic in a pass of their own, before the second wave, as unfused.
    first = next(i for i, t in enumerate(told) if t.startswith("idle"))
    assert told[first - 1] != "add"
