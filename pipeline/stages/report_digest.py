"""Execution reports read off their bytes for the planner's pending flow, without an ``Event``.

The plan stage reads every record of ``sep.executions`` (four or more per intent: started,
submitted, filled, completed) for what ``PendingFlow.observe`` needs of it: the event type,
the intent, and of a fill or a failure its step (and the version a fill landed at).
Decoding each as an ``Event`` (its timestamp parsed, its payload built) and validating a
fill's payload (its amounts run Python validators) was ~15 % of the stage's CPU
(``sep bench stages --wire``), for four fields.

``read_report`` answers only for a record that is plainly valid: exactly the envelope's
fields (their camelCase names), each of its JSON type, the timestamp in the RFC 3339 form
our stages write, and for a fill or a failure exactly its payload's fields, amounts as
plain decimal strings.  Every such record is one ``decode_event`` and ``payload_as`` accept,
with the same values (``tests/stages/test_report_digest.py`` checks both ways on many
altered records).  Anything else gives ``None`` and is decoded as before, so a malformed
record fails as it did, with the same error.

    b'{"eventId":..,"timestamp":"2026-12-06T20:34:10.532000Z","topic":"exec.step_filled",
       "correlationId":"intent-..","causationId":..,"seq":8,"version":1,
       "payload":{"planId":..,"stepId":"plan-..-1",..,"amountIn":"324.0",..,"landedAt":1}}'
    -> Report(topic="exec.step_filled", correlation_id="intent-..", step_id="plan-..-1",
              landed_at=1)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

import orjson

INTENT_TOPIC = "intent.prioritised"
"""What a planner plans: never read here (it needs the whole event)."""


class Report(NamedTuple):
    """What the pending flow takes of an execution report."""

    topic: str
    correlation_id: str
    step_id: str | None = None
    """``exec.step_filled`` and ``exec.step_failed``: the step."""
    landed_at: int | None = None
    """``exec.step_filled``: the venue's version the trade landed at, if it says."""


# A timestamp as ``Event.timestamp`` is written (UTC, at most microseconds): pydantic reads
# every one of these that ``datetime.fromisoformat`` does (which checks the ranges).
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")

# An ``Amount`` as our stages write one: at most 41 digits before the point and 36 after
# (``Amount`` allows 78 in all and 36 places), no exponent, no leading zeros.
_AMOUNT = re.compile(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,36})?")

# ``ExecStepFilled`` and ``ExecStepFailed`` by wire name: their required text fields (and a
# fill's amounts); besides, a fill may have ``landedAt``, ``fee``, ``feeAsset``, and both
# ``paper``.  (Checked field by field: set operations and ``all`` cost more than the rest.)
_FILLED_TEXT = ("planId", "stepId", "venue", "orderRef", "assetIn", "assetOut")
_FAILED_TEXT = ("planId", "stepId", "venue", "reason")


class _Stamps:
    """The last timestamp found valid: an executor stamps a pass's reports with one clock
    reading, so most are checked by one comparison."""

    last = ""


def read_report(raw: bytes) -> Report | None:
    """The report in ``raw`` when it is plainly valid and not an intent to plan, else
    ``None`` (decode it as an ``Event``: it is odd, or an ``intent.prioritised``)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    get = data.get
    topic, correlation_id, seq = get("topic"), get("correlationId"), get("seq")
    payload, causation = get("payload"), get("causationId")
    # The eight fields by their wire names and nothing else (``causationId`` may be absent).
    if len(data) != (8 if "causationId" in data else 7):
        return None
    if (
        type(topic) is not str
        or topic == INTENT_TOPIC
        or type(correlation_id) is not str
        or type(get("eventId")) is not str
        or (causation is not None and type(causation) is not str)
        or type(seq) is not int
        or seq < 1
        or type(get("version")) is not int
        or type(payload) is not dict
        or not _stamp(get("timestamp"))
    ):
        return None
    if topic == "exec.step_filled":
        return _filled(topic, correlation_id, payload)
    if topic == "exec.step_failed":
        return _failed(topic, correlation_id, payload)
    return Report(topic, correlation_id)


def _stamp(value: object) -> bool:
    if type(value) is not str:
        return False
    if value == _Stamps.last:
        return True
    if _STAMP.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:  # a month 13, a 25th hour...
        return False
    _Stamps.last = value
    return True


def _filled(topic: str, correlation_id: str, payload: dict[str, Any]) -> Report | None:
    get = payload.get
    for name in _FILLED_TEXT:
        if type(get(name)) is not str:
            return None
    if not _amount(get("amountIn")) or not _amount(get("amountOut")):
        return None
    fields = 8 + ("landedAt" in payload) + ("fee" in payload) + ("feeAsset" in payload)
    landed_at, fee, fee_asset = get("landedAt"), get("fee"), get("feeAsset")
    if (
        len(payload) != fields + ("paper" in payload)
        or (landed_at is not None and type(landed_at) is not int)
        or (fee is not None and not _amount(fee))
        or (fee_asset is not None and type(fee_asset) is not str)
        or not _paper(payload)
    ):
        return None
    return Report(topic, correlation_id, payload["stepId"], landed_at)


def _failed(topic: str, correlation_id: str, payload: dict[str, Any]) -> Report | None:
    get = payload.get
    for name in _FAILED_TEXT:
        if type(get(name)) is not str:
            return None
    if len(payload) != 4 + ("paper" in payload) or not _paper(payload):
        return None
    return Report(topic, correlation_id, payload["stepId"])


def _amount(value: object) -> bool:
    return type(value) is str and _AMOUNT.fullmatch(value) is not None


def _paper(payload: dict[str, Any]) -> bool:
    paper = payload.get("paper")
    return paper is None or type(paper) is bool
