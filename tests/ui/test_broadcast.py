"""The change broadcaster and its subscribers, without Redis: a fake stream tails in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.store.changes import ChangeStream, parse_id
from ui.broadcast import ChangeBroadcaster, Overflowed, Subscriber


def change(n: int) -> dict[str, Any]:
    return {"type": "change", "id": f"{n}-0", "intentId": "intent-a", "topic": "x"}


class FakeStream(ChangeStream):
    """``tail`` blocks like ``XREAD BLOCK``: it returns as soon as an entry is appended."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.appended = asyncio.Event()
        self.reads = 0

    async def head(self) -> str:
        return self.entries[-1]["id"] if self.entries else "0-0"

    async def tail(self, last_seen: str, block_ms: int, count: int = 1000) -> list[dict[str, Any]]:
        self.reads += 1
        key = parse_id(last_seen)
        with_timeout = asyncio.timeout(block_ms / 1000)
        try:
            async with with_timeout:
                while not (new := [e for e in self.entries if parse_id(e["id"]) > key]):
                    self.appended.clear()
                    await self.appended.wait()
        except TimeoutError:
            return []
        return new[:count]

    def append(self, *changes: dict[str, Any]) -> None:
        self.entries.extend(changes)
        self.appended.set()


async def test_take_returns_everything_queued_oldest_first() -> None:
    sub = Subscriber()
    sub.offer([change(1), change(2)])
    sub.offer([change(3)])
    assert [c["id"] for c in await sub.take()] == ["1-0", "2-0", "3-0"]
    assert sub.queued == 0


async def test_take_waits_for_the_next_offer() -> None:
    sub = Subscriber()
    taker = asyncio.create_task(sub.take())
    await asyncio.sleep(0.01)
    assert not taker.done()
    sub.offer([])  # an empty read wakes nobody
    await asyncio.sleep(0.01)
    assert not taker.done()
    sub.offer([change(7)])
    assert [c["id"] for c in await asyncio.wait_for(taker, 1)] == ["7-0"]


async def test_a_subscriber_past_its_limit_overflows_and_keeps_nothing() -> None:
    sub = Subscriber(limit=3)
    sub.offer([change(1), change(2)])
    sub.offer([change(3), change(4)])
    assert sub.overflowed
    assert sub.queued == 0
    sub.offer([change(5)])  # nothing more is queued for a sender that must close
    assert sub.queued == 0
    with pytest.raises(Overflowed):
        await sub.take()


async def test_a_waiting_sender_learns_of_the_overflow_at_once() -> None:
    sub = Subscriber(limit=1)
    taker = asyncio.create_task(sub.take())
    await asyncio.sleep(0.01)
    sub.offer([change(1), change(2)])
    with pytest.raises(Overflowed):
        await asyncio.wait_for(taker, 1)


async def test_the_tail_hands_new_changes_over_at_once_not_at_the_block_timeout() -> None:
    stream = FakeStream()
    stream.append(change(1))
    broadcaster = ChangeBroadcaster(stream, block_ms=5_000)
    try:
        sub = await broadcaster.subscribe()  # from now on: after 1-0
        loop = asyncio.get_running_loop()
        started = loop.time()
        stream.append(change(2), change(3))
        got = await asyncio.wait_for(sub.take(), 1)
        assert loop.time() - started < 0.5  # far below the 5 s block
        assert [c["id"] for c in got] == ["2-0", "3-0"]
        stream.append(change(4))
        assert [c["id"] for c in await asyncio.wait_for(sub.take(), 1)] == ["4-0"]
    finally:
        await broadcaster.close()


async def test_every_subscriber_gets_every_change_in_order() -> None:
    stream = FakeStream()
    broadcaster = ChangeBroadcaster(stream, block_ms=5_000)
    try:
        subs = [await broadcaster.subscribe() for _ in range(3)]
        for n in range(1, 31):
            stream.append(change(n))
            if n % 7 == 0:
                await asyncio.sleep(0)  # some reads get one change, some several
        for sub in subs:
            got: list[str] = []
            while len(got) < 30:
                got += [c["id"] for c in await asyncio.wait_for(sub.take(), 1)]
            assert got == [f"{n}-0" for n in range(1, 31)]
    finally:
        await broadcaster.close()
