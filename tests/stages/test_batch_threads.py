"""BatchThreads: a batch's items on several threads, results in the batch's order."""

from __future__ import annotations

import threading
import time

from pipeline.stages.batch_threads import BatchThreads


def test_results_come_in_the_items_order_whatever_finishes_first() -> None:
    threads = BatchThreads(2, "t")
    try:
        # The first item is the slowest: its result still comes first.
        def slow_first(i: int) -> int:
            time.sleep(0.05 if i == 0 else 0)
            return i * i

        assert list(threads.map(slow_first, [0, 1, 2, 3])) == [0, 1, 4, 9]
    finally:
        threads.close()


def test_a_batch_runs_on_the_pool_and_a_single_item_on_the_caller() -> None:
    threads = BatchThreads(2, "plan")
    try:

        def where(_: int) -> str:
            return threading.current_thread().name

        assert all(name.startswith("plan") for name in threads.map(where, [1, 2, 3]))
        assert list(threads.map(where, [1])) == [threading.current_thread().name]
    finally:
        threads.close()


def test_two_items_run_at_once() -> None:
    threads = BatchThreads(2, "t")
    both = threading.Barrier(2, timeout=5)
    try:
        # Each item waits for the other: only possible if they run at the same time.
        assert list(threads.map(lambda i: both.wait() >= 0 and i, [1, 2])) == [1, 2]
    finally:
        threads.close()


def test_one_thread_runs_everything_on_the_caller() -> None:
    threads = BatchThreads(1)
    caller = threading.current_thread().name
    assert list(threads.map(lambda _: threading.current_thread().name, [1, 2])) == [caller] * 2
