"""Run a batch's items through a function on a few threads: for work that releases the GIL.

The plan stage's use: most of an intent's plan time is the Rust route search (79 % with 4
splits over 10,000 pools, measured with py-spy), which runs without the GIL, so the searches
for different intents of one batch run side by side on different cores.  A batch of one runs
on the calling thread: handing it to a thread would only add the hop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchThreads:
    """``map`` a function over a batch on up to ``threads`` threads, results in order."""

    def __init__(self, threads: int, name: str = "batch") -> None:
        self.threads = max(1, threads)
        self._pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix=name) if self.threads > 1 else None
        )

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """``fn`` of each item, in the items' order, each as soon as it and the ones before
        it are done.  Whatever ``fn`` reads must not change until the iterator is exhausted."""
        if self._pool is None or len(items) < 2:
            return map(fn, items)
        return self._pool.map(fn, items)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
