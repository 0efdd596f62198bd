"""One reader of the change stream per app, fanned out to every WebSocket subscriber.

Like encode/broadcaster: the stream is read once (``XREAD`` from the last id seen) and each
subscriber gets every entry in its own bounded queue.  A subscriber that falls too far behind
is marked overflowed rather than slowing everyone down; its socket is closed and the client
resumes from its last seen id, which the stream still has.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

from pipeline.store.changes import ChangeStream

log = logging.getLogger(__name__)
QUEUE_SIZE = 20_000


class Overflowed(Exception):
    """The subscriber fell more than its limit behind; its sender must let the client resume."""


class Subscriber:
    """Changes offered since subscribing, for one sender, taken a batch at a time.

    A sender takes everything queued in one ``take``: at 200 intents/s the stream carries
    ~1,800 changes a second, and waking the sender once per change (a queue ``get`` and an
    overflow wait raced per change) was a third of the UI's CPU, time every later change of a
    read waited behind (measured with ``sep bench stream --segments``)."""

    def __init__(self, limit: int = QUEUE_SIZE) -> None:
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.overflowed = False

    @property
    def queued(self) -> int:
        return len(self._pending)

    def offer(self, changes: list[dict[str, Any]]) -> None:
        """Queue changes (oldest first); past the limit, mark the subscriber overflowed."""
        if self.overflowed or not changes:
            return
        if len(self._pending) + len(changes) > self._limit:
            self.overflowed = True
            self._pending.clear()  # never sent: the client resumes from its last seen id
        else:
            self._pending.extend(changes)
        self._ready.set()

    async def take(self) -> list[dict[str, Any]]:
        """Every change queued, oldest first, waiting for at least one; ``Overflowed`` once
        the subscriber fell too far behind."""
        while not self._pending and not self.overflowed:
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            raise Overflowed
        batch = list(self._pending)
        self._pending.clear()
        return batch


class ChangeBroadcaster:
    def __init__(self, changes: ChangeStream, block_ms: int = 1000) -> None:
        self._changes = changes
        self._block_ms = block_ms
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def subscribe(self) -> Subscriber:
        """A subscriber that gets every change appended from now on (read the backlog after)."""
        sub = Subscriber()
        self._subscribers.add(sub)
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="change-broadcaster")
        # Until the reader knows where the stream ends, "from now on" is not yet defined.
        await self._ready.wait()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    async def _run(self) -> None:
        delay = 0.1
        last: str | None = None
        while True:
            try:
                if last is None:
                    last = await self._changes.head()
                    self._ready.set()
                changes = await self._changes.tail(last, self._block_ms)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: keep the sockets, retry with backoff
                log.warning("change stream read failed (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for sub in list(self._subscribers):
                sub.offer(changes)
            if changes:
                last = changes[-1]["id"]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
