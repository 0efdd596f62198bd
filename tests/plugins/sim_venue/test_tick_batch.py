"""TickBatch: calls of one loop iteration run together, in order, results to each caller."""

from __future__ import annotations

import asyncio

import pytest

from plugins.sim_venue.tick_batch import TickBatch


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.running = 0

    async def run(self, items: list[int]) -> list[int]:
        self.running += 1
        assert self.running == 1, "two batches ran at once"
        self.batches.append(items)
        await asyncio.sleep(0.01)
        self.running -= 1
        if self.fail:
            raise RuntimeError("ledger away")
        return [item * 10 for item in items]


async def test_calls_of_one_iteration_are_one_batch_in_order() -> None:
    recorder = Recorder()
    batch = TickBatch(recorder.run)
    results = await asyncio.gather(*(batch(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert recorder.batches == [[0, 1, 2, 3, 4]]


async def test_calls_made_while_a_batch_runs_form_the_next_one() -> None:
    recorder = Recorder()
    batch = TickBatch(recorder.run)
    first = asyncio.gather(batch(1), batch(2))
    await asyncio.sleep(0.001)  # the first batch is running now
    second = asyncio.gather(batch(3))
    assert (await first, await second) == ([10, 20], [30])
    assert recorder.batches == [[1, 2], [3]]


async def test_a_failed_batch_fails_every_caller() -> None:
    batch = TickBatch(Recorder(fail=True).run)
    results = await asyncio.gather(batch(1), batch(2), return_exceptions=True)
    assert [str(r) for r in results] == ["ledger away", "ledger away"]


async def test_a_cancelled_caller_does_not_cancel_the_batch() -> None:
    recorder = Recorder()
    batch = TickBatch(recorder.run)
    leaving = asyncio.ensure_future(batch(1))
    staying = asyncio.ensure_future(batch(2))
    await asyncio.sleep(0.001)
    leaving.cancel()
    assert await staying == 20
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert recorder.batches == [[1, 2]]
