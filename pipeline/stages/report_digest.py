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


class _Stamps:
    """The last timestamp found valid: an executor stamps a pass's reports with one clock
    reading, so most are checked by one comparison."""

    last = ""


def read_report(raw: bytes) -> Report | None:
    """The report in ``raw`` when it is plainly valid and not an intent to plan, else
    ``None`` (decode it as an ``Event``: it is odd, or an ``intent.prioritised``)."""
    try:
        data = orjson.loads(raw)
        # Indexed, not ``get``: a field missing (or no object at all) is the exception.
        topic, correlation_id, seq = data["topic"], data["correlationId"], data["seq"]
        payload, event_id, version = data["payload"], data["eventId"], data["version"]
        stamp = data["timestamp"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    # The eight fields by their wire names and nothing else (``causationId`` may be absent).
    fields = len(data)
    causation = data.get("causationId")
    if fields != 7 and (fields != 8 or "causationId" not in data):
        return None
    if (
        type(data) is not dict
        or type(topic) is not str
        or topic == INTENT_TOPIC
        or type(correlation_id) is not str
        or type(event_id) is not str
        or (causation is not None and type(causation) is not str)
        or type(seq) is not int
        or seq < 1
        or type(version) is not int
        or type(payload) is not dict
        or not _stamp(stamp)
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
    """An ``ExecStepFilled`` by wire name: its text fields and amounts, and nothing besides
    ``landedAt``, ``fee``, ``feeAsset`` and ``paper``.  (Field by field: set operations,
    ``all`` and ``get`` cost more than the rest.)"""
    try:
        text = (
            payload["planId"],
            payload["stepId"],
            payload["venue"],
            payload["orderRef"],
            payload["assetIn"],
            payload["assetOut"],
        )
        amount_in, amount_out = payload["amountIn"], payload["amountOut"]
    except KeyError:
        return None
    for value in text:
        if type(value) is not str:
            return None
    get = payload.get
    landed_at, fee, fee_asset, paper = get("landedAt"), get("fee"), get("feeAsset"), get("paper")
    optional = ("landedAt" in payload) + ("fee" in payload) + ("feeAsset" in payload)
    if (
        len(payload) != 8 + optional + ("paper" in payload)
        or not _amount(amount_in)
        or not _amount(amount_out)
        or (landed_at is not None and type(landed_at) is not int)
        or (fee is not None and not _amount(fee))
        or (fee_asset is not None and type(fee_asset) is not str)
        or (paper is not None and type(paper) is not bool)
    ):
        return None
    return Report(topic, correlation_id, text[1], landed_at)


def _failed(topic: str, correlation_id: str, payload: dict[str, Any]) -> Report | None:
    """An ``ExecStepFailed`` by wire name: its text fields, and nothing besides ``paper``."""
    try:
        text = (payload["planId"], payload["stepId"], payload["venue"], payload["reason"])
    except KeyError:
        return None
    for value in text:
        if type(value) is not str:
            return None
    paper = payload.get("paper")
    if len(payload) != 4 + ("paper" in payload) or (paper is not None and type(paper) is not bool):
        return None
    return Report(topic, correlation_id, text[1])


def _amount(value: object) -> bool:
    return type(value) is str and _AMOUNT.fullmatch(value) is not None
