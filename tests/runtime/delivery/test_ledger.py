"""The offset ledger: offsets become committable in fetch order, never past a failure."""

from __future__ import annotations

import asyncio

from pipeline.runtime.delivery.ledger import OffsetLedger

A0, A1 = ("t", 0), ("t", 1)


def test_a_batch_is_committable_once_every_slice_settled() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0, A1])
    batch = ledger.open({A0: 15, A1: 10}, slices=2)
    ledger.settle_slice(batch)
    assert ledger.committable() == {}
    ledger.settle_slice(batch)
    assert ledger.committable() == {A0: 15, A1: 10}


def test_a_later_batch_waits_for_an_earlier_one() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0])
    first = ledger.open({A0: 15}, slices=1)
    second = ledger.open({A0: 21}, slices=1)
    ledger.settle_slice(second)
    assert ledger.committable() == {}
    ledger.settle_slice(first)
    assert ledger.committable() == {A0: 21}


def test_nothing_after_a_failed_batch_is_ever_committed() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0])
    first = ledger.open({A0: 15}, slices=1)
    failed = ledger.open({A0: 21}, slices=1)
    later = ledger.open({A0: 30}, slices=1)
    ledger.settle_slice(first)
    ledger.settle_slice(failed, ok=False)
    ledger.settle_slice(later)
    assert ledger.committable() == {A0: 15}
    assert ledger.blocked


def test_committed_offsets_are_not_offered_again() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0])
    ledger.settle_slice(ledger.open({A0: 5}, slices=1))
    ledger.committed(ledger.committable())
    assert ledger.committable() == {}
    ledger.settle_slice(ledger.open({A0: 9}, slices=1))
    assert ledger.committable() == {A0: 9}


def test_a_batch_from_an_earlier_generation_moves_no_offset() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0, A1])
    old = ledger.open({A0: 15, A1: 4}, slices=1)
    ledger.revoke([A0, A1])
    ledger.assign([A1])
    ledger.settle_slice(old)
    assert ledger.committable() == {}
    ledger.settle_slice(ledger.open({A1: 8}, slices=1))
    assert ledger.committable() == {A1: 8}


async def test_drain_waits_for_batches_in_flight() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0])
    batch = ledger.open({A0: 3}, slices=1)
    assert not await ledger.drain(0.01)
    ledger.settle_slice(batch)
    assert await ledger.drain(0.01)


async def test_a_waiting_fetch_loop_wakes_when_any_batch_is_done() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0, A1])
    first = ledger.open({A0: 3}, slices=1, records=3)
    second = ledger.open({A1: 5}, slices=1, records=5)
    assert ledger.inflight_records == 8
    waiting = asyncio.ensure_future(ledger.wait_for_a_batch(5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    ledger.settle_slice(second)  # not the oldest: nothing leaves the ledger yet
    await asyncio.wait_for(waiting, 1.0)
    assert (ledger.inflight, ledger.inflight_records) == (2, 8)
    ledger.settle_slice(first)
    assert (ledger.inflight, ledger.inflight_records) == (0, 0)


async def test_waiting_for_a_batch_gives_up_after_its_bound() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0])
    ledger.open({A0: 3}, slices=1, records=3)
    started = asyncio.get_running_loop().time()
    await ledger.wait_for_a_batch(0.02)
    assert asyncio.get_running_loop().time() - started >= 0.015


def test_nothing_after_an_abandoned_batch_is_committed_until_the_next_assignment() -> None:
    ledger = OffsetLedger()
    ledger.assign([A0])
    done = ledger.open({A0: 5}, slices=1)
    dropped = ledger.open({A0: 9}, slices=1)
    later = ledger.open({A0: 12}, slices=1)
    ledger.settle_slice(done)
    ledger.abandon_slice(dropped)  # a rebalance dropped it unprocessed
    ledger.settle_slice(later)
    assert ledger.committable() == {A0: 5}
    assert not ledger.blocked  # not a failure: the next assignment starts afresh
    ledger.assign([A0])
    ledger.settle_slice(ledger.open({A0: 14}, slices=1))
    assert ledger.committable() == {A0: 14}


def test_a_split_slice_settles_its_batch_only_when_both_parts_have() -> None:
    # A lane-scheduled pass took part of a slice (pipeline.runtime.delivery.runner).
    ledger = OffsetLedger()
    ledger.assign([A0, A1])
    first = ledger.open({A0: 10}, slices=1)
    second = ledger.open({A1: 4}, slices=1)
    ledger.split_slice(first)
    ledger.settle_slice(first)  # the part taken
    ledger.settle_slice(second)  # a later batch, all done
    assert ledger.committable() == {}  # the part of `first` still queued holds both back
    assert ledger.open_batches == 1
    assert ledger.inflight == 2
    ledger.settle_slice(first)
    assert ledger.committable() == {A0: 10, A1: 4}
    assert ledger.open_batches == 0
