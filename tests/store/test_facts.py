"""The lean decoder: the model's values for what it accepts, the model's errors otherwise."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from pipeline.codec import decode_event, encode_event
from pipeline.store.facts import Facts, decode_facts
from pipeline.store.projection import project
from plugins.sim_venue import SimVenue
from tests.store.lifecycle import lifecycle, rejected

FIELDS = tuple(f for f in Facts._fields if f != "at")  # the envelope's (``at``: see below)


async def test_real_events_decode_to_the_models_values_and_projections(sim: SimVenue) -> None:
    events = await lifecycle(sim, 1) + rejected(2)
    for event in events:
        raw = encode_event(event)
        facts, model = decode_facts(raw), decode_event(raw)
        assert isinstance(facts, Facts)  # the lean path, not the fallback
        assert [getattr(facts, f) for f in FIELDS] == [getattr(model, f) for f in FIELDS]
        assert facts.timestamp.isoformat() == model.timestamp.isoformat()
        assert facts.at == model.timestamp.isoformat()  # the stamps our encoder writes
        assert project(facts) == project(model)


def _raw(**changes: object) -> bytes:
    base: dict[str, object] = {
        "eventId": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "timestamp": "2027-01-15T08:00:00.005000Z",
        "topic": "exec.started",
        "correlationId": "intent-01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "causationId": None,
        "seq": 6,
        "payload": {"planId": "plan-1", "steps": 1},
    }
    base.update(changes)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize(
    "raw",
    [
        _raw(seq=0),
        _raw(seq=...),
        _raw(payload=[1]),
        _raw(timestamp="2027-01-15T25:00:00Z"),
        _raw(timestamp="yesterday"),
        _raw(eventId=7),
        _raw(extra=1),
        b"not json",
        b"[1, 2]",
    ],
)
def test_what_the_model_refuses_is_refused_with_its_error(raw: bytes) -> None:
    with pytest.raises(ValidationError) as model:
        decode_event(raw)
    with pytest.raises(ValidationError) as lean:
        decode_facts(raw)
    assert lean.value.errors() == model.value.errors()


@pytest.mark.parametrize(
    "raw",
    [
        _raw(),
        _raw(causationId=...),
        _raw(version=2),
        _raw(seq="6"),  # lax: the model's way
        _raw(seq=True),
        _raw(timestamp="2027-01-15T09:00:00+01:00"),
        _raw(timestamp="2027-01-15T08:00:00Z"),
        _raw(timestamp=1_800_000_000),  # a unix time: the model's way
        _raw(eventId=..., event_id="01HZZZZZZZZZZZZZZZZZZZZZZZ"),  # by name: the model's way
    ],
)
def test_what_the_model_accepts_gives_its_values(raw: bytes) -> None:
    try:
        model = decode_event(raw)
    except ValidationError:
        with pytest.raises(ValidationError):
            decode_facts(raw)
        return
    facts = decode_facts(raw)
    assert [getattr(facts, f) for f in FIELDS] == [getattr(model, f) for f in FIELDS]


def test_the_time_text_is_the_timestamps_isoformat_or_unknown() -> None:
    """``Facts.at`` is sliced from the record's text: for any time and any layout the
    decoder accepts, it is ``timestamp.isoformat()`` or '' (project formats it then)."""
    rng = random.Random(13)
    stamps = [
        "2027-01-15T08:00:00Z",
        "2027-01-15T08:00:00.000000Z",
        "2027-01-15T08:00:00.5Z",
        "2027-01-15T08:00:00.000001Z",
        "2027-01-15T08:00:00.123Z",
        "2027-01-15T09:00:00+01:00",
        "2027-01-15T08:00:00.250000+00:00",
    ]
    for _ in range(2000):
        at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=rng.randrange(10**9) * rng.choice((1, 1000, 1_000_000))
        )
        stamps.append(orjson.dumps(at, option=orjson.OPT_UTC_Z)[1:-1].decode())
    known = 0
    for stamp in stamps:
        facts = decode_facts(_raw(timestamp=stamp))
        assert isinstance(facts, Facts), stamp
        assert facts.at in ("", facts.timestamp.isoformat()), stamp
        known += facts.at != ""
    assert known > 1900  # the encoder's own stamps take the quick way
