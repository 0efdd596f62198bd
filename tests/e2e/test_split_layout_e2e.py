"""`sep up --layout split` on the real services: the execution path and project in processes
of their own, project at its declared lower CPU priority, every intent still completed and
stored; and the restart tests at 500 intents/s on this layout (the one that meets issue 11's
latency targets): a graceful stop and a kill -9 mid-stream lose nothing and fill nothing
twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, skip_backlog, wait_until_finished
from pipeline.runtime.app import group_id
from pipeline.runtime.placement import layout_of
from pipeline.samples import submission
from pipeline.topology import load_topology
from tests.e2e.interruptions import STOP_BOUND_S, assert_exactly_once, interrupt_mid_stream

TOPOLOGY = load_topology()
LAYOUT = layout_of(TOPOLOGY, "split", 1)


def niceness(pid: int) -> int:
    """Field 19 of /proc/<pid>/stat (after the parenthesised command name)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


@pytest.fixture(scope="module")
async def split(prepared: Settings) -> AsyncIterator[WorkerPool]:
    for process in LAYOUT:  # new groups: skip what earlier modules left on the topics
        stages = tuple(process.split(","))
        inputs = {t for s in TOPOLOGY.stages if s.name in stages for t in s.inputs}
        await skip_backlog(
            prepared.kafka,
            group_id(TOPOLOGY, stages),
            {t.name: t.partitions for t in TOPOLOGY.topics if t.name in inputs},
        )
    pool = WorkerPool(prepared, layout=LAYOUT, name="split")
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


async def test_project_runs_nicer_and_every_intent_is_stored(
    split: WorkerPool, prepared: Settings
) -> None:
    assert LAYOUT == ("ingest,validate,prioritise,plan,execute", "project")
    run = uuid.uuid4().hex[:8]
    ids = []
    async with IntentProducer(prepared.kafka) as producer:
        for i in range(20):
            body = submission(
                TOPOLOGY,
                "DISPOSE" if i % 2 else "ACQUIRE",
                "WETH",
                "USDC",
                "0.01",
                strategy_id=f"split-{run}",
                client_intent_id=f"{run}-{i}",
                venues=["sim"],
            )
            stamp, delivery = await producer.send(body)
            await delivery
            ids.append(predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"]))
    # Terminal events are in the event store only if project (its own process) stored them.
    done = await wait_until_finished(prepared.postgres, ids, timeout=90, pool=split)
    assert set(done.values()) == {"exec.completed"}, done
    # (Each worker lowers its priority once it has loaded: by now, long since.)
    chain, project = (niceness(p.pid) for p in split.procs)
    assert project == min(19, chain + TOPOLOGY.stage("project").niceness) > chain


async def test_split_graceful_restart_mid_stream_loses_nothing(
    split: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    codes: list[int | None] = []

    def stop() -> None:
        codes.extend(split.stop(timeout=STOP_BOUND_S + 5))

    ids = await interrupt_mid_stream(split, prepared, stop)
    assert codes == [0] * len(LAYOUT), f"exit statuses {codes}"
    await assert_exactly_once(prepared, db, ids, split)


async def test_split_kill_9_mid_stream_loses_nothing_and_fills_once(
    split: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    ids = await interrupt_mid_stream(split, prepared, split.kill)
    await assert_exactly_once(prepared, db, ids, split)
