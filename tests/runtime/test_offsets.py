"""The commit rule that replaced faust's: never past a record that was not processed."""

from __future__ import annotations

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from pipeline.runtime.offsets import (
    committable_run,
    dropped_records,
    stages_idle,
    undelivered_records,
)


def test_run_from_base_commits_one_past_its_end() -> None:
    acked = [10, 11, 12, 15]
    done, end = committable_run(acked, 10)
    assert end == 13
    assert done == [10, 11, 12]
    assert acked == [15]


def test_a_single_missing_record_at_the_head_blocks_the_commit() -> None:
    # faust's own rule committed 13 here, skipping offset 10 (its gap check is off by one).
    acked = [11, 12]
    assert committable_run(acked, 10) == ([], None)
    assert acked == [11, 12]


def test_base_zero_is_checked_like_any_other() -> None:
    # faust skipped the check when the committed offset was 0.
    acked = [3, 4, 5]
    assert committable_run(acked, 0) == ([], None)


def test_stale_offsets_below_base_are_dropped() -> None:
    acked = [4, 5, 6, 7]
    done, end = committable_run(acked, 6)
    assert (done, end, acked) == ([4, 5, 6, 7], 8, [])


def test_unsorted_input_is_handled() -> None:
    acked = [7, 5, 6]
    assert committable_run(acked, 5) == ([5, 6, 7], 8)


@given(
    base=st.integers(0, 50),
    processed=st.sets(st.integers(0, 120), max_size=80),
)
def test_commit_never_passes_an_unprocessed_offset(base: int, processed: set[int]) -> None:
    acked = sorted(processed)
    _done, end = committable_run(acked, base)
    if end is None:
        assert base not in processed
    else:
        assert all(o in processed for o in range(base, end))
        assert end not in processed  # the run is maximal
    assert all(o > (end if end is not None else base - 1) for o in acked)


TP0 = TP("sep.intents.submitted", 0)
TP1 = TP("sep.intents.submitted", 1)


def test_a_hole_at_the_base_is_refetched_on_the_second_sighting() -> None:
    suspect: dict[TP, int] = {}
    base = {TP0: 40, TP1: 10}
    acked = {TP0: [41, 42], TP1: [10, 11]}
    assert dropped_records(base, acked, {TP0, TP1}, suspect) == []  # first sighting
    assert dropped_records(base, acked, {TP0, TP1}, suspect) == [(TP0, 40)]
    assert suspect == {}  # reset: a third call does not seek again at once
    assert dropped_records(base, acked, {TP0, TP1}, suspect) == []


def test_progress_between_sightings_clears_the_suspicion() -> None:
    suspect: dict[TP, int] = {}
    assert dropped_records({TP0: 40}, {TP0: [41]}, {TP0}, suspect) == []
    # the base record's ack landed, the commit moved: nothing was dropped
    assert dropped_records({TP0: 42}, {TP0: []}, {TP0}, suspect) == []
    assert dropped_records({TP0: 42}, {TP0: [44]}, {TP0}, suspect) == []  # a new first sighting


def test_partitions_not_assigned_are_left_alone() -> None:
    suspect: dict[TP, int] = {}
    for _ in range(3):
        assert dropped_records({TP0: 40}, {TP0: [41]}, {TP1}, suspect) == []


IN = TP("sep.intents.submitted", 5)


def test_records_fetched_but_never_handed_to_a_stage_are_fetched_again() -> None:
    # The measured case: position 30, nothing delivered, commit base 0.
    suspect: dict[TP, tuple[int, int]] = {}
    assert undelivered_records({IN: 30}, {}, {IN: 0}, suspect) == []  # first sighting
    assert undelivered_records({IN: 30}, {}, {IN: 0}, suspect) == [(IN, 0)]
    assert suspect == {}  # reported once, then forgotten


def test_the_seek_goes_to_one_past_the_last_delivered_offset() -> None:
    suspect: dict[TP, tuple[int, int]] = {}
    undelivered_records({IN: 50}, {IN: 41}, {IN: 10}, suspect)
    assert undelivered_records({IN: 50}, {IN: 41}, {IN: 10}, suspect) == [(IN, 42)]


def test_a_position_at_the_next_expected_offset_is_not_a_drop() -> None:
    suspect: dict[TP, tuple[int, int]] = {}
    for _ in range(3):
        assert undelivered_records({IN: 42}, {IN: 41}, {IN: 10}, suspect) == []
        assert undelivered_records({IN: 7}, {}, {IN: 7}, suspect) == []
    assert suspect == {}


def test_delivery_progress_between_calls_is_not_a_drop() -> None:
    # Records still on their way to the stage: delivered moves, so no two sightings agree.
    suspect: dict[TP, tuple[int, int]] = {}
    for delivered in (10, 20, 30, 40):
        assert undelivered_records({IN: 50}, {IN: delivered}, {IN: 0}, suspect) == []


def test_a_partition_not_yet_seeked_is_left_alone() -> None:
    suspect: dict[TP, tuple[int, int]] = {}
    for _ in range(3):
        assert undelivered_records({IN: 30}, {}, {}, suspect) == []


def test_stages_idle_only_when_every_queue_is_empty() -> None:
    assert stages_idle({"ingest": lambda: 0, "project": lambda: 0})
    assert not stages_idle({"ingest": lambda: 0, "project": lambda: 3})
    assert stages_idle({})
