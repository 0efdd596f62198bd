"""The same end-to-end check with every stage on its own (``SEP_FUSION=0``): fusion is an
optimisation the topology declares, never a requirement (issue 11: both are tested)."""

from __future__ import annotations

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
    # The workers really ran unfused: prioritise and plan each read their own topic.
    logs = workers.log_tail(400)
    assert '"validate+prioritise+plan"' not in logs
    assert '"prioritise"' in logs
