"""Calls made during one event-loop iteration, run as one batch.

The executor runs a batch's plans side by side: their submissions, and then their receipts,
reach the venue within one iteration of the loop.  Each was a ledger transaction of its own
(an SQLite commit each); a ``TickBatch`` hands them to the ledger together, in the order they
were made, as one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class TickBatch(Generic[A, R]):
    """``await batch(item)``: ``run`` is called once, on the loop's next iteration, with every
    item queued until then (in order), and must return one result per item.  If it raises,
    every caller of that batch gets the exception.  Batches run one at a time, in order."""

    def __init__(self, run: Callable[[list[A]], Awaitable[Sequence[R]]]) -> None:
        self._run = run
        self._queue: list[tuple[A, asyncio.Future[R]]] = []
        self._scheduled = False
        self._order = asyncio.Lock()
        self._flushing: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def __call__(self, item: A) -> asyncio.Future[R]:
        """``item``'s result, to await (a future, not a coroutine: one frame less a call)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        # A caller cancelled while waiting cancels its own future only: the batch runs in a
        # task of its own, and skips a future already done (no ``shield``, which cost a
        # second future and two callbacks per call).
        return future

    def _start(self) -> None:
        batch, self._queue, self._scheduled = self._queue, [], False
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: list[tuple[A, asyncio.Future[R]]]) -> None:
        async with self._order:
            try:
                results = await self._run([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} got {len(results)} results")
            except BaseException as exc:  # every caller hears of it; none waits forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
