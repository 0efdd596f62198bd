"""The same end-to-end check with every stage on its own (``SEP_FUSION=0``): fusion is an
optimisation the topology declares, never a requirement (issue 11: both are tested)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import asyncpg
import pytest

from pipeline.config import Settings
from pipeline.harness import WorkerPool
from tests.e2e.test_pipeline_e2e import test_300_intents_reach_the_right_end as check_300


@pytest.fixture(scope="module")
def workers(prepared: Settings) -> Iterator[WorkerPool]:
    pool = WorkerPool(prepared, count=2, extra_env={"SEP_FUSION": "0"}, name="unfused")
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


async def test_300_intents_reach_the_right_end_with_every_stage_on_its_own(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    await check_300(workers, prepared, db)
    # The workers really ran unfused: every stage its own group (the "worker consuming" line
    # names them; the whole logs, since a tail can be all redeliveries — see the README's
    # Known issues on switching fusion off on a running deployment).
    consuming = [
        json.loads(line)
        for path in sorted(workers.log_dir.glob(f"{workers.name}-*.log"))
        for line in path.read_text(errors="replace").splitlines()
        if '"worker consuming"' in line
    ]
    assert consuming
    for line in consuming:
        assert all("+" not in group for group in line["groups"]), line["groups"]
        assert {"prioritise", "plan", "execute"} <= set(line["groups"])
