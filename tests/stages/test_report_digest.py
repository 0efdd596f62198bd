"""Execution reports read off their bytes: the same fields ``decode_event`` and ``payload_as``
give, and ``None`` for every record they would refuse (so it is decoded, and fails, as before).

Reports are made as the executor makes them (``make_event``), then altered at random: a
field dropped, renamed, retyped or given an odd value, the JSON cut short.  For each, either
``read_report`` gives ``None`` or the event decodes to the same values.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pipeline.codec import decode_event, encode_event
from pipeline.models.base import WireModel
from pipeline.models.events import (
    ExecCompleted,
    ExecFailed,
    ExecStarted,
    ExecStepFailed,
    ExecStepFilled,
    ExecStepSubmitted,
    IntentExpired,
    make_event,
)
from pipeline.stages.report_digest import Report, read_report

NOW = 1_700_000_000_000


def _payload(rng: random.Random) -> tuple[str, WireModel]:
    amount = Decimal(rng.randint(0, 10**30)).scaleb(-rng.randint(0, 36))
    kind = rng.choice(
        [
            "started",
            "submitted",
            "filled",
            "filled",
            "failed",
            "completed",
            "failed_exec",
            "expired",
        ]
    )
    paper = rng.choice([None, True, False])
    if kind == "started":
        return "exec.started", ExecStarted(plan_id="plan-1", steps=2, paper=paper)
    if kind == "submitted":
        return "exec.step_submitted", ExecStepSubmitted(
            plan_id="plan-1", step_id="plan-1-1", venue="sim", order_ref="0xab"
        )
    if kind == "filled":
        return "exec.step_filled", ExecStepFilled(
            plan_id="plan-1",
            step_id=f"plan-1-{rng.randint(1, 3)}",
            venue="sim",
            order_ref="sim-1",
            asset_in="DAI",
            asset_out="WETH",
            amount_in=amount,
            amount_out=Decimal("0.107933923260266962"),
            landed_at=rng.choice([None, 0, 7, 2**40]),
            fee=rng.choice([None, Decimal("0.3")]),
            fee_asset=rng.choice([None, "DAI"]),
            paper=paper,
        )
    if kind == "failed":
        return "exec.step_failed", ExecStepFailed(
            plan_id="plan-1", step_id="plan-1-2", venue="sim", reason="reverted", paper=paper
        )
    if kind == "completed":
        return "exec.completed", ExecCompleted(
            plan_id="plan-1",
            asset_in="DAI",
            asset_out="WETH",
            amount_in=amount,
            amount_out=amount,
            realised_slippage=Decimal(0),
        )
    if kind == "ended":
        return "exec.failed", ExecFailed(plan_id="plan-1", reason="slippage")
    return "intent.expired", IntentExpired(deadline_ms=NOW, observed_at_ms=NOW + 1, stage="execute")


def _report_bytes(rng: random.Random) -> bytes:
    topic, payload = _payload(rng)
    event = make_event(
        topic,
        payload,
        correlation_id=f"intent-{rng.randint(0, 9)}",
        seq=rng.randint(1, 12),
        causation_id=rng.choice([None, "01CAUSE"]),
        at_ms=NOW + rng.randint(0, 10**9),
        id_ms=NOW,
    )
    return encode_event(event)


_ODD_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.0,
    1.5,
    True,
    "",
    "x",
    "1e3",
    "01.5",
    "1." + "0" * 37,
    "9" * 42,
    "NaN",
    "-0",
    " 1",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-12-06T24:00:00Z",
    "2026-12-06T20:34:10.1234567Z",
    "2026-12-06T20:34:10+00:00",
    "2026-12-06",
    1_700_000_000,
    [],
    {},
    2**70,
]


def _alter(rng: random.Random, raw: bytes) -> bytes:
    data = orjson.loads(raw)
    target = data["payload"] if rng.random() < 0.5 and data["payload"] else data
    name = rng.choice(sorted(target))
    how = rng.randrange(5)
    if how == 0:
        del target[name]
    elif how == 1:
        target[name + "X"] = target.pop(name)
    elif how == 2:
        # The Python name where the wire name belongs (pydantic takes either: populate_by_name).
        snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
        target[snake] = target.pop(name)
    elif how == 3:
        target[name] = rng.choice(_ODD_VALUES)
    else:
        target["extra"] = 1
    # The standard library's JSON: orjson cannot write an integer beyond 64 bits.
    return json.dumps(data, separators=(",", ":")).encode()


def _expected(raw: bytes) -> Report | None:
    """What ``decode_event`` and ``payload_as`` make of ``raw``: the report, or None when they
    refuse it (or it is an intent)."""
    try:
        event = decode_event(raw)
        if event.topic == "intent.prioritised":
            return None
        if event.topic == "exec.step_filled":
            filled = event.payload_as(ExecStepFilled)
            return Report(event.topic, event.correlation_id, filled.step_id, filled.landed_at)
        if event.topic == "exec.step_failed":
            failed = event.payload_as(ExecStepFailed)
            return Report(event.topic, event.correlation_id, failed.step_id)
        return Report(event.topic, event.correlation_id)
    except ValidationError:
        return None


@pytest.mark.parametrize("seed", range(10))
def test_a_report_as_the_executor_writes_it_is_read_as_decoding_would(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        raw = _report_bytes(rng)
        report = read_report(raw)
        assert report is not None
        assert report == _expected(raw)


@pytest.mark.parametrize("seed", range(20))
def test_an_altered_report_is_read_only_if_decoding_would_accept_it_alike(seed: int) -> None:
    rng = random.Random(seed)
    read = 0
    for _ in range(300):
        raw = _alter(rng, _report_bytes(rng))
        report = read_report(raw)
        if report is not None:  # read here: decoding accepts it, with the same values
            assert report == _expected(raw), raw
            read += 1
    assert read > 0  # some alterations keep a report valid (an optional field dropped...)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"{}",
        b'{"topic": "exec.started"',
        b"not json",
        b"\xff\xfe",
    ],
)
def test_bytes_that_are_no_report_are_left_to_decoding(raw: bytes) -> None:
    assert read_report(raw) is None


def test_an_intent_on_the_reports_topic_is_left_to_decoding() -> None:
    rng = random.Random(1)
    data = orjson.loads(_report_bytes(rng))
    data["topic"] = "intent.prioritised"
    assert read_report(orjson.dumps(data)) is None
