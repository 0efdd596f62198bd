"""Never twice, never a gap: the journal across crashes, restarts and concurrent steps."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from plugins.uniswap_v3 import UniswapV3Venue
from plugins.uniswap_v3.journal import TxRecord

pytestmark = pytest.mark.slow

ROUTE = "USDC>WETH-USDC-500>WETH"


class Crash(BaseException):
    """The process dies here (BaseException: nothing in the venue may swallow it)."""


def crash_before_send(venue: UniswapV3Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill the 'process' after the journal write, before the node sees the transaction."""
    real = venue._broadcast

    async def broadcast(record: TxRecord, *, fresh: bool) -> str | None:
        if fresh and not record.step_id.startswith("approve:"):
            raise Crash
        return await real(record, fresh=fresh)

    monkeypatch.setattr(venue, "_broadcast", broadcast)


async def test_after_a_crash_before_sending_the_restarted_venue_sends_it_once(
    make_venue: Any, make_step: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await make_venue("shared")
    await first.wait_receipt(await first.submit(make_step("warm-up", ROUTE, "10")), 30)
    crash_before_send(first, monkeypatch)
    nonce = await first.w3.eth.get_transaction_count(first.address)
    with pytest.raises(Crash):
        await first.submit(make_step("s-crash", ROUTE, "100"))
    journalled = await first.lookup("s-crash")
    assert journalled is not None
    assert await first.w3.eth.get_transaction_count(first.address, "pending") == nonce
    await first.stop()

    before = await first_balances(make_venue)
    second = await make_venue("shared")  # same data dir: same journal; start() recovers
    again = await second.lookup("s-crash")
    assert again == journalled
    fill = await second.wait_receipt(again, 30)
    assert fill.amount_in == Decimal(100)
    after = await second.balances()
    assert after["USDC"] - before["USDC"] == Decimal(-100)  # spent once, not twice
    tx = await second.w3.eth.get_transaction(again.order_ref)  # type: ignore[arg-type]
    assert tx["nonce"] == nonce  # the journalled nonce, so no gap before it
    assert second.journal.count("s-crash") == 1
    # No gap after it either: the next swap is mined straight away.
    nxt = await second.submit(make_step("s-after-crash", ROUTE, "1"))
    await second.wait_receipt(nxt, 10)
    tx = await second.w3.eth.get_transaction(nxt.order_ref)  # type: ignore[arg-type]
    assert tx["nonce"] == nonce + 1


async def first_balances(make_venue: Any) -> dict[str, Decimal]:
    observer = await make_venue("observer")
    return await observer.balances()


async def test_wait_receipt_rebroadcasts_a_journalled_transaction_the_node_never_saw(
    make_venue: Any, make_step: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = await make_venue()
    await venue.wait_receipt(await venue.submit(make_step("warm", ROUTE, "1")), 30)
    crash_before_send(venue, monkeypatch)
    with pytest.raises(Crash):
        await venue.submit(make_step("s-lost", ROUTE, "5"))
    monkeypatch.undo()
    submission = await venue.lookup("s-lost")
    assert submission is not None
    fill = await venue.wait_receipt(submission, 30)
    assert fill.amount_in == Decimal(5)
    assert venue.journal.count("s-lost") == 1


async def test_lookup_returns_the_submission_and_waiting_again_is_harmless(
    make_venue: Any, make_step: Any
) -> None:
    venue = await make_venue()
    assert await venue.lookup("s-once") is None
    submission = await venue.submit(make_step("s-once", ROUTE, "3"))
    assert await venue.lookup("s-once") == submission
    first = await venue.wait_receipt(submission, 30)
    restarted = await make_venue()  # another process on the same data dir
    assert await restarted.lookup("s-once") == submission
    assert await restarted.wait_receipt(submission, 30) == first


async def test_concurrent_submits_get_distinct_consecutive_nonces(
    make_venue: Any, make_step: Any
) -> None:
    venue = await make_venue()
    await venue.wait_receipt(await venue.submit(make_step("warm", ROUTE, "1")), 30)
    start = await venue.w3.eth.get_transaction_count(venue.address, "pending")
    steps = [make_step(f"s-conc-{i}", ROUTE, str(10 + i)) for i in range(8)]
    submissions = await asyncio.gather(*(venue.submit(s) for s in steps))
    fills = await asyncio.gather(*(venue.wait_receipt(s, 30) for s in submissions))
    txs = await asyncio.gather(
        *(
            venue.w3.eth.get_transaction(s.order_ref)  # type: ignore[arg-type]
            for s in submissions
        )
    )
    assert sorted(tx["nonce"] for tx in txs) == list(range(start, start + 8))
    assert [f.amount_in for f in fills] == [Decimal(10 + i) for i in range(8)]
    assert await venue.w3.eth.get_transaction_count(venue.address) == start + 8


async def test_two_venues_sharing_a_signer_continue_from_the_node(
    make_venue: Any, make_step: Any
) -> None:
    # Different data dirs (no shared journal): each seeds its nonce from the node.
    a, b = await make_venue("a"), await make_venue("b")
    fill_a = await a.wait_receipt(await a.submit(make_step("s-a", ROUTE, "2")), 30)
    fill_b = await b.wait_receipt(await b.submit(make_step("s-b", ROUTE, "2")), 30)
    assert fill_a.amount_in == fill_b.amount_in == Decimal(2)
    # a's local nonce is now stale (b used it): the node refuses it, a resynchronises and
    # sends again with a fresh nonce; lookup then names the transaction that was mined.
    again = await a.submit(make_step("s-a2", ROUTE, "2"))
    assert (await a.wait_receipt(again, 30)).amount_in == Decimal(2)
    assert await a.lookup("s-a2") == again
    assert a.journal.count("s-a2") == 2  # the refused one stays in the journal, marked


async def test_two_processes_submitting_one_step_make_one_transaction(
    make_venue: Any, make_step: Any
) -> None:
    # Two workers running one plan across a rebalance: both looked the step up before either
    # recorded it, and both send it.  The shared journal lets only the first one sign.
    a, b = await make_venue(), await make_venue()  # one data dir: one journal file
    await a.wait_receipt(await a.submit(make_step("warm-twice", ROUTE, "1")), 30)
    step = make_step("s-twice", ROUTE, "3")
    assert await a.lookup("s-twice") is None
    assert await b.lookup("s-twice") is None
    first, second = await asyncio.gather(a.submit(step), b.submit(step))
    assert first == second
    assert a.journal.count("s-twice") == 1
    fills = [await a.wait_receipt(first, 30), await b.wait_receipt(second, 30)]
    assert fills[0] == fills[1]
    assert fills[0].amount_in == Decimal(3)
