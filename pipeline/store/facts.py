"""What the event store and the read models read of an event, and a lean decoder for it.

Project decodes every record of every stage's topic only to store and project it: it needs
the envelope's fields and the payload as plain JSON values, never the payload's typed model.
``Event.model_validate_json`` cost ~9 us an event, most of it building the model; orjson and a
named tuple ~5 us (a micro-bench over the lifecycles of ``sep bench readmodel``, alternating,
minimum of 15 rounds).  So ``decode_facts`` checks the envelope itself, field by field as the
model would, and hands anything it does not recognise to ``decode_event``: a record the model
refuses is refused the same way, with the same error; one it accepts gives the same values.

    b'{"eventId": "01H…", "timestamp": "2027-01-15T08:00:00.005000Z", "topic": "exec.started",
       "correlationId": "intent-01H…", "causationId": "01H…", "seq": 6, "version": 1,
       "payload": {"planId": "plan-01H…", "steps": 1}}'
      -> Facts(event_id="01H…", timestamp=datetime(2027, 1, 15, 8, 0, 0, 5000, UTC), …)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, NamedTuple, Protocol

import orjson

from pipeline.codec import decode_event
from pipeline.models.events import ENVELOPE_VERSION


class EventFacts(Protocol):
    """An event's envelope and raw payload: ``Event`` has them, and so has ``Facts``."""

    @property
    def event_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def topic(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def causation_id(self) -> str | None: ...
    @property
    def seq(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def payload(self) -> dict[str, Any]: ...


class Facts(NamedTuple):
    event_id: str
    timestamp: datetime
    topic: str
    correlation_id: str
    causation_id: str | None
    seq: int
    version: int
    payload: dict[str, Any]
    at: str = ""
    """``timestamp.isoformat()``, made from the record's text when that is cheaper ('' when
    not known: ``projection.project`` formats the timestamp then)."""


_KEYS: Final = frozenset(
    ("eventId", "timestamp", "topic", "correlationId", "causationId", "seq", "version", "payload")
)
_REQUIRED: Final = frozenset(("eventId", "timestamp", "topic", "correlationId", "seq", "payload"))
# The timestamps our encoder writes (pydantic: ISO 8601, UTC as "Z"); pydantic accepts more
# (unix times, other layouts), which go to it.
_TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


def decode_facts(raw: bytes) -> EventFacts:
    """The record's event (see the module's docstring); ``decode_event``'s errors if it is
    not one."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return decode_event(raw)
    if not (isinstance(d, dict) and d.keys() <= _KEYS and d.keys() >= _REQUIRED):
        return decode_event(raw)
    event_id, stamp, topic, correlation_id = (
        d["eventId"],
        d["timestamp"],
        d["topic"],
        d["correlationId"],
    )
    causation_id, seq = d.get("causationId"), d["seq"]
    version, payload = d.get("version", ENVELOPE_VERSION), d["payload"]
    if not (
        type(event_id) is str
        and type(topic) is str
        and type(correlation_id) is str
        and (causation_id is None or type(causation_id) is str)
        and type(seq) is int
        and seq >= 1
        and type(version) is int
        and type(payload) is dict
        and type(stamp) is str
        and _TIMESTAMP.fullmatch(stamp)
    ):
        return decode_event(raw)
    try:
        timestamp = datetime.fromisoformat(stamp)
    except ValueError:  # e.g. hour 25: the model's error
        return decode_event(raw)
    # ``timestamp.isoformat()`` for the UTC stamps our encoder writes, by slicing (~1 us less
    # an event than formatting the datetime, and project formats every event's time): the
    # regex passed, so 27 characters ending in Z are six digits of microseconds (isoformat
    # drops them when all zero), 20 are none.  '' for any other layout.
    n = len(stamp)
    if n == 27 and stamp[26] == "Z" and stamp[20:26] != "000000":
        at = stamp[:26] + "+00:00"
    elif n == 20 and stamp[19] == "Z":
        at = stamp[:19] + "+00:00"
    else:
        at = ""
    return Facts(
        event_id, timestamp, topic, correlation_id, causation_id, seq, version, payload, at
    )
