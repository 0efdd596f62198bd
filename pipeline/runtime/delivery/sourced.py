"""Remembered decisions recovered from the stage's own events instead of a changelog.

A remembered decision (``pipeline.stages.decisions``) is the outputs a stage gave an intent,
kept so that a redelivered record gets them again, byte for byte.  For validate, prioritise
and plan those outputs are exactly the stage's events for the intent on its events topic
(``sep.intents.validated``, ``sep.intents.prioritised``, ``sep.plans``), keyed by the intent
id: the topic already *is* a log of every decision.  Writing each one again to a changelog
topic doubled the bytes those stages produce (three records an intent, and their tombstones
a TTL later), so a ``SourcedTable`` writes nothing and recovers from the events topic itself.
(On a quiet machine this did not show in the CPU per intent of the workers or the broker,
within ~5 %: bench/RESULTS.md, session 10.  It halves those stages' bytes on disk.)

**Recovery.**  When the worker is given input partition p, it reads partition p of the events
topic (keyed like the input: same key, same partition count, so the intents of input
partition p are answered in events partition p) from the first record younger than the
table's TTL to the end, and groups the records by key in offset order.  A decision is the
records of a key up to and including its first *final* event (``intent.accepted`` or
``risk.rejected``; ``intent.prioritised`` or ``intent.expired``; ``plan.created`` or
``plan.rejected``).  Copies of a record already taken (a redelivery re-emitted it) are
skipped.

**What a changelog did that this does differently.**
- The decision is durable when its events are, not before them.  A crash between a stage's
  two events of one answer (validate's ``risk.approved`` then ``intent.accepted``, which go
  to one partition together, so only a batch boundary can fall between them) leaves an
  answer without its final event; recovery then treats the intent as unanswered and decides
  it again (logged as ``incomplete``).  With the changelog the same window existed the other
  way round (the changelog record and the outputs are on different partitions).
- The window is the TTL by record timestamp (the events' producer time), as the changelog's
  entries lived the TTL from when a worker first saw them.
- Execute's openings stay on a changelog: an opening can hold a refusal and a re-plan under
  other keys, which its events topic cannot give back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.runtime.delivery.entries import TableEntries
from pipeline.stages.base import Output
from pipeline.stages.decisions import encode_outputs
from pipeline.stages.table_names import (
    PLAN_DECISIONS,
    PRIORITISE_DECISIONS,
    VALIDATE_DECISIONS,
)

log = logging.getLogger(__name__)

FINAL_EVENTS: Mapping[str, frozenset[str]] = {
    VALIDATE_DECISIONS: frozenset({"intent.accepted", "risk.rejected"}),
    PRIORITISE_DECISIONS: frozenset({"intent.prioritised", "intent.expired"}),
    PLAN_DECISIONS: frozenset({"plan.created", "plan.rejected"}),
}
"""The tables that can be recovered from their stage's events: the event types that end one
decision.  (Validate's ``risk.approved`` comes before its ``intent.accepted``.)"""

# The envelope's "topic" (the event type) comes before its payload (``Event``'s field order),
# and its eventId and timestamp cannot contain a quote: the first match is the envelope's.
_EVENT_TYPE = re.compile(rb'"topic":"([^"]+)"')


def event_type(value: bytes | None) -> str | None:
    found = _EVENT_TYPE.search(value or b"", 0, 512)
    return found.group(1).decode() if found else None


@dataclass
class _Gathered:
    outputs: list[Output] = field(default_factory=list)
    seen: set[bytes] = field(default_factory=set)
    final: bool = False


class SourcedTable(TableEntries):
    """A ``StageTable`` kept in memory, recovered from the stage's events topic (see the
    module docstring).  ``topic`` is that events topic; nothing is ever written for it."""

    def __init__(self, name: str, topic: str, help: str, final: frozenset[str]) -> None:
        super().__init__(name, topic, help)
        self.final = final
        self._gathering: dict[int, dict[str, _Gathered]] = {}
        self.incomplete = 0
        """Intents whose recovered answer had no final event (decided again; see above)."""

    # -- for the runtime ------------------------------------------------------------------

    def take_pending(self) -> list[Any]:
        """Nothing to write: the stage's events are the log."""
        return []

    def gather(
        self,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]],
    ) -> None:
        """One record of the events topic, read during recovery, in offset order."""
        if key is None or value is None:
            return
        text = key.decode()
        if text in self._data:
            return  # answered in this process: what it holds is the answer
        gathered = self._gathering.setdefault(partition, {}).setdefault(text, _Gathered())
        if gathered.final or value in gathered.seen:
            return  # a later answer (cannot be: it was remembered) or a re-emitted copy
        gathered.seen.add(value)
        gathered.outputs.append(Output(self.topic, key, value, tuple(headers)))
        gathered.final = event_type(value) in self.final

    def finish(self, partition: int) -> int:
        """The answers gathered from ``partition``, remembered; how many."""
        found = 0
        for key, gathered in self._gathering.pop(partition, {}).items():
            if not gathered.final:
                self.incomplete += 1
                log.warning(
                    "an answer recovered without its final event is decided again",
                    extra={"table": self.name, "intent_id": key, "partition": partition},
                )
                continue
            self._recover(key, encode_outputs(gathered.outputs, partition), partition)
            found += 1
        return found
