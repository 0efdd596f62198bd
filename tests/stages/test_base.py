"""What every stage shares: records and outputs made without ``__init__`` are the same."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.codec import encode_event, encode_key
from pipeline.models.events import IntentCancelled, make_event
from pipeline.stages.base import Output, Record


def test_an_output_of_an_event_is_the_output_init_makes() -> None:
    event = make_event(
        "intent.cancelled",
        IntentCancelled(reason="asked"),
        correlation_id="intent-A",
        seq=2,
        causation_id=None,
        at_ms=5_000,
        id_ms=1_000,
    )
    made = Output.of_event("sep.executions", event)
    init = Output("sep.executions", encode_key("intent-A"), encode_event(event), event=event)
    assert made == init
    assert list(vars(made).items()) == list(vars(init).items())  # every field, in order
    assert made.event is event
    assert made.headers == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.topic = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize("event", [None, "an event"])
def test_a_record_made_is_the_record_init_makes(event: str | None) -> None:
    fields = ("sep.plans", 3, -1, 1_000, b"intent-A", b"{}")
    made = Record.made(*fields, event)  # type: ignore[arg-type]
    init = Record(*fields, event=event)  # type: ignore[arg-type]
    assert made == init
    assert list(vars(made).items()) == list(vars(init).items())
    assert hash(made) == hash(init)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.offset = 4  # type: ignore[misc]
