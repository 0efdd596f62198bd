"""``event_type`` reads the envelope's type as the regex it replaced on the common path."""

from __future__ import annotations

import re

import pytest

from pipeline.risk.feed import _CORRELATION_FIELD, _TOPIC_FIELD, correlation_id, event_type


def _by_regex(value: bytes, pattern: re.Pattern[bytes] = _TOPIC_FIELD) -> str | None:
    found = pattern.search(value)
    return found.group(1).decode() if found else None


@pytest.mark.parametrize(
    "value",
    [
        b'{"eventId":"x","timestamp":"t","topic":"exec.step_filled","correlationId":"c"}',
        b'{"topic":"intent.accepted"}',
        b'{"topic":"not.a.type","payload":{"topic":"exec.completed"}}',
        b'{"topic":"x\\"y","payload":{"topic":"exec.completed"}}',
        b'{"topic":"","payload":{"topic":"plan.created"}}',
        b'{"topic":"exec.completed',
        b'{"topic":"exec.completed\\u0000"}',
        b'{"payload":{}}',
        b"",
        b'{"topic" : "exec.failed"}',
    ],
)
def test_event_type_reads_as_the_regex(value: bytes) -> None:
    assert event_type(value) == _by_regex(value)


@pytest.mark.parametrize(
    "value",
    [
        b'{"eventId":"x","topic":"exec.completed","correlationId":"intent-1","payload":{}}',
        b'{"correlationId":"","payload":{"correlationId":"inner"}}',
        b'{"correlationId":"a\\"b","payload":{"correlationId":"inner"}}',
        b'{"correlationId":"a\\\\b","x":{"correlationId":"c"}}',
        b'{"correlationId":"unterminated',
        b'{"correlationId":"',
        b'{"correlationId" : "spaced"}',
        b'{"payload":{}}',
        b"",
    ],
)
def test_correlation_id_reads_as_the_regex(value: bytes) -> None:
    assert correlation_id(value) == _by_regex(value, _CORRELATION_FIELD)
