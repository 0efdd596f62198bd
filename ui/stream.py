"""``WS /stream``: the change stream, filtered, resumable, in order, without duplicates.

Client -> server:
    {"action": "subscribe", "topics": ["intent.*", "exec.*"], "correlationId": "intent-…",
     "after": "1717000000000-0"}          (topics default to ["*"]; after: last seen id)
    {"action": "ping"}
Server -> client:
    {"type": "subscribed", "after": …, "head": …}   then the missed changes (if ``after``)
    {"type": "caught_up", "id": …}                  then the live tail
    {"type": "change", "id": …, "intentId", "seq", "topic", "state", "eventId", "ms", "data"}
    {"type": "reset", "reason": …}   the stream no longer holds everything after ``after``
    {"type": "error", "message": …, "errors": [{"path", "message"}]}  (the socket stays open)

Handover without gap or duplicate: the subscriber is registered with the broadcaster *before*
the backlog is read, so every change lands in the backlog, the live queue, or both; the sender
remembers the last id it sent and skips anything not after it.

"In order" is the stream's order (ids only grow), which is the order project applied the
events: one intent's events travel on several topics, so a change of seq 4 can come before
the one of seq 2 (project read the prioritised topic's batch first).  Each change carries its
``seq``, and its ``state`` is the intent's state after every change applied so far (never
moved back by a late, lower seq): a client orders an intent's timeline by ``seq``.

The receiver (reading client frames) and the sender (one task per subscription) are separate
tasks; a new subscribe replaces the running subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from pipeline.models.base import WireModel
from pipeline.store.changes import STREAM_ID, parse_id
from ui.broadcast import Overflowed
from ui.errors import InvalidInput
from ui.services import Services, services_of

log = logging.getLogger(__name__)
Topic = Annotated[str, Field(min_length=1, max_length=64)]


class Subscribe(WireModel):
    action: Literal["subscribe"]
    topics: Annotated[tuple[Topic, ...], Field(min_length=1, max_length=32)] = ("*",)
    correlation_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    after: Annotated[str, Field(pattern=STREAM_ID.pattern)] | None = None

    def matches(self, change: dict[str, Any]) -> bool:
        if self.correlation_id is not None and change["intentId"] != self.correlation_id:
            return False
        return any(fnmatch.fnmatchcase(change["topic"], glob) for glob in self.topics)


class Connection:
    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.websocket = websocket
        self.services = services
        self._send_lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(orjson.dumps(frame).decode())

    async def receive(self) -> None:
        """The receiver: parse frames; (re)start the sender on each valid subscribe."""
        sender: asyncio.Task[None] | None = None
        try:
            while True:
                text = await self.websocket.receive_text()
                try:
                    request = parse_frame(text)
                except InvalidInput as exc:
                    await self.send({"type": "error", "message": exc.message, "errors": exc.errors})
                    continue
                if request is None:
                    await self.send({"type": "pong"})
                    continue
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await sender
                sender = asyncio.create_task(self.serve(request))
        except WebSocketDisconnect:
            pass
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender

    async def serve(self, request: Subscribe) -> None:
        """The sender for one subscription: missed changes, then the live tail."""
        broadcaster, changes = self.services.broadcaster, self.services.changes
        sub = await broadcaster.subscribe()
        try:
            head = await changes.head()
            last = request.after if request.after is not None else head
            await self.send(
                {
                    "type": "subscribed",
                    "topics": list(request.topics),
                    "correlationId": request.correlation_id,
                    "after": last,
                    "head": head,
                }
            )
            if request.after is not None and await self._trimmed_past(request.after):
                await self.send(
                    {
                        "type": "reset",
                        "reason": "the change stream no longer holds "
                        "every change after this id; reload the view",
                    }
                )
            while True:  # the backlog, in chunks, until it is exhausted
                batch = await changes.after(last, 1000)
                if not batch:
                    break
                for change in batch:
                    if request.matches(change):
                        await self.send(change)
                last = batch[-1]["id"]
            await self.send({"type": "caught_up", "id": last})
            last_key = parse_id(last)
            while True:
                try:
                    batch = await sub.take()  # everything the tail read since the last take
                except Overflowed:
                    await self.websocket.close(1013, "too far behind; resume from last id")
                    return
                for change in batch:
                    key = parse_id(change["id"])
                    if key <= last_key:
                        continue  # already sent from the backlog
                    last_key = key
                    if request.matches(change):
                        await self.send(change)
        except (WebSocketDisconnect, RuntimeError):
            return  # the client went away mid-send
        finally:
            broadcaster.unsubscribe(sub)

    async def _trimmed_past(self, after: str) -> bool:
        # Redis >= 7 reports the highest id trimmed away; older servers: assume nothing was.
        try:
            info = await self.services.redis.xinfo_stream(self.services.changes.key)
        except Exception:
            return False
        deleted = str(info.get("max-deleted-entry-id") or "0-0")
        return parse_id(after) < parse_id(deleted)


def parse_frame(text: str) -> Subscribe | None:
    """A subscribe request, or None for a ping; ``InvalidInput`` for anything else."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput([{"path": "", "message": f"not JSON: {exc}"}], "bad frame") from exc
    if isinstance(data, dict) and data.get("action") == "ping":
        return None
    try:
        return Subscribe.model_validate(data)
    except ValidationError as exc:
        error = InvalidInput.from_validation(exc)
        error.message = "bad subscribe message"
        raise error from exc


async def stream_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    connection = Connection(websocket, services_of(websocket.app))
    await connection.receive()
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close()
