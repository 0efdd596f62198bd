"""The worker's collector settings: a higher young threshold, and every pause on record."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline.config import Settings
from pipeline.runtime import gc_tuning


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if gc_tuning._on_collect in gc.callbacks:
            gc.callbacks.remove(gc_tuning._on_collect)


@pytest.mark.usefixtures("restored")
def test_configure_raises_the_young_threshold_and_counts_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEP_GC_THRESHOLD", "12345")
    threshold = Settings().gc_threshold  # the worker passes its settings' threshold
    gc_tuning.configure(threshold)
    gc_tuning.configure(threshold)  # idempotent: one callback
    assert gc.get_threshold()[0] == 12345
    assert gc.callbacks.count(gc_tuning._on_collect) == 1
    before = gc_tuning.STATS["collections"]
    gc.collect()
    assert gc_tuning.STATS["collections"] == before + 1
    assert gc_tuning.STATS["max_ms"] >= 0.0
    assert gc_tuning.STATS["total_ms"] >= gc_tuning.STATS["max_ms"]
