"""What a stage decided for an intent, so a redelivered record gets the same answer.

Kafka delivers at least once: a record processed just before a rebalance or a crash, whose
offset was not yet committed, is processed again (by this worker or another).  A stage whose
answer depends on the world -- the plan stage (pools move), validate (account balances
move) -- could then answer differently under the same ``seq``: the event store would hold
``plan.created`` *and* ``plan.rejected`` for one intent, and worse, the execute stage could
run a second plan with other legs after the first had traded.  So these stages remember their
outputs per intent in a table (recovered by whichever worker owns the partition next: from the
stage's own events topic, ``pipeline/runtime/delivery/sourced.py``, or from a changelog topic)
and re-emit them, byte for byte, when the intent comes again.

An entry is needed only while its input record may still be redelivered, i.e. until its
offset is committed, which is seconds.  Entries are forgotten (and tombstoned in the
changelog, so compaction drops them) ``ttl_s`` (``SEP_DECISION_TTL_S``, 5 minutes) after this
process first saw them: written here, or recovered at start-up, when any redelivery happens
straight away.  Without that the table, and every worker's start-up recovery, would grow
with the whole history: at 270 intents/s an entry of ~1.5 KB is ~24 MB a minute per table.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import orjson

from pipeline.models.events import Event
from pipeline.stages.base import Emit, Output, Record, StageTable

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 300.0
SWEEP_EVERY_S = 30.0


FORMAT = 2
"""The table value's format: 2 keeps keys and values as text (events are UTF-8 JSON) where
format 1 (no ``"v"``) base64-encoded every byte string.  Base64 per output was ~3 % of a
backtest's CPU; ``decode_outputs`` reads both, so a worker recovers entries an older one
wrote to the changelog (they live ``ttl_s``, so a rolling upgrade has both for minutes)."""


def _text(data: bytes) -> str | list[str]:
    """``data`` as text if it is UTF-8 (strictly decoded, so it encodes back to the same
    bytes), else ``[base64]``: an output is ours, but nothing forces its bytes to be text."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return [base64.b64encode(data).decode()]


def _bytes(value: str | list[str]) -> bytes:
    return base64.b64decode(value[0]) if isinstance(value, list) else value.encode()


def encode_outputs(outputs: Sequence[Output], partition: int) -> str:
    """``outputs`` and the changelog partition their entry lives in, as one table value."""
    rows: list[list[object]]
    try:  # all text, as our events are: decoded at once (a call and a try less a field)
        rows = [
            [
                o.topic,
                o.key.decode(),
                o.value.decode(),
                [[name, value.decode()] for name, value in o.headers] if o.headers else [],
            ]
            for o in outputs
        ]
    except UnicodeDecodeError:  # some bytes are not text: those go as ``[base64]``
        rows = [
            [
                o.topic,
                _text(o.key),
                _text(o.value),
                [[name, _text(value)] for name, value in o.headers],
            ]
            for o in outputs
        ]
    return orjson.dumps({"v": FORMAT, "p": partition, "o": rows}).decode()


def decode_outputs(value: str) -> tuple[int, list[Output]]:
    """What ``encode_outputs`` wrote, in this format or format 1 (every byte string in
    base64: changelog entries written before format 2)."""
    data = orjson.loads(value)
    legacy = data.get("v") != FORMAT

    def read(field: str | list[str]) -> bytes:
        return base64.b64decode(field) if legacy else _bytes(field)  # type: ignore[arg-type]

    outputs = [
        Output(
            topic,
            read(key),
            read(body),
            tuple((name, read(h)) for name, h in headers),
        )
        for topic, key, body, headers in data["o"]
    ]
    return int(data["p"]), outputs


class Decisions:
    """A stage's remembered outputs, by intent id, over a ``StageTable``."""

    def __init__(
        self,
        table: StageTable,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._ttl_s = ttl_s
        self._clock = clock
        self._seen: dict[str, float] = {}  # key -> when this process first saw it
        self._next_sweep = clock() + SWEEP_EVERY_S
        self.recalled = 0

    def recall(self, intent_id: str) -> list[Output] | None:
        """The outputs given for ``intent_id`` before, or ``None`` if it is new here."""
        value = self._table.get(intent_id)
        if value is None:
            return None
        self.recalled += 1
        log.info(
            "redelivered intent: re-emitting the earlier decision", extra={"intent_id": intent_id}
        )
        return decode_outputs(value)[1]

    def recovered(self) -> list[tuple[str, list[Output]]]:
        """The answers recovered from the changelog since the last call, by intent id: given
        by an earlier process (a restart) or another worker (a partition moved here)."""
        out: list[tuple[str, list[Output]]] = []
        for key in self._table.take_recovered():
            value = self._table.get(key)
            if value is not None:
                out.append((key, decode_outputs(value)[1]))
        return out

    def unanswered(self, events: Iterable[Event]) -> list[Event]:
        """The events whose intent has no answer remembered, one per intent (its first)."""
        fresh: dict[str, Event] = {}
        for event in events:
            key = event.correlation_id
            if key not in fresh and self._table.get(key) is None:
                fresh[key] = event
        return list(fresh.values())

    async def answer(
        self,
        pairs: Sequence[tuple[Record, Event]],
        decide: Callable[[Event], Sequence[Output]],
        emit: Emit,
        *,
        then: Callable[[Event, Sequence[Output]], None] | None = None,
    ) -> None:
        """Emit each event's answer: the one remembered for its intent (a redelivery gets the
        same events, byte for byte) or else ``decide(event)``'s, remembered first.  ``then``
        sees every answer before it is emitted.  The stages that answer once per intent
        (validate, plan) share this loop; what they decide is theirs."""
        for record, event in pairs:
            outputs: Sequence[Output] | None = self.recall(event.correlation_id)
            if outputs is None:
                outputs = decide(event)
                self.remember(event.correlation_id, outputs, record)
            if then is not None:
                then(event, outputs)
            for output in outputs:
                await emit(output)
        self.sweep()

    def remember(self, intent_id: str, outputs: Sequence[Output], record: Record) -> None:
        self._table.set(intent_id, encode_outputs(outputs, record.partition), record)
        self._seen[intent_id] = self._clock()

    def sweep(self) -> int:
        """Forget entries older than the TTL (at most every ``SWEEP_EVERY_S``); how many."""
        now = self._clock()
        if now < self._next_sweep:
            return 0
        self._next_sweep = now + SWEEP_EVERY_S
        for key in self._table.held_keys():
            self._seen.setdefault(key, now)  # recovered at start-up: seen now
        expired = [key for key, seen in self._seen.items() if now - seen >= self._ttl_s]
        for key in expired:
            del self._seen[key]
            value = self._table.get(key)
            if value is not None:
                self._table.delete(key, decode_outputs(value)[0])
        return len(expired)
