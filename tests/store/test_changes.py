"""Reading change-stream entries: every kind the stream may hold gives the same frames."""

from __future__ import annotations

import orjson

from pipeline.store.changes import to_changes

DATA = [{"at:intent.submitted": "t1", "updatedAt": "t1"}, {"updatedAt": "t2"}]
FRAMES = [
    {
        "type": "change",
        "id": "1717000000000-2",
        "intentId": "intent-1",
        "seq": 1,
        "topic": "intent.submitted",
        "state": "submitted",
        "eventId": "e1",
        "ms": 10,
        "data": DATA[0],
    },
    {
        "type": "change",
        "id": "1717000000000-3",
        "intentId": "intent-1",
        "seq": 2,
        "topic": "risk.approved",
        "state": "submitted",
        "eventId": "e2",
        "ms": 11,
        "data": DATA[1],
    },
]
ROWS = [[1, "intent.submitted", "e1", 10, DATA[0]], [2, "risk.approved", "e2", 11, DATA[1]]]


def test_an_entry_with_states_beside_its_changes() -> None:
    fields = {
        "intentId": "intent-1",
        "changes": orjson.dumps(ROWS).decode(),
        "states": '["submitted","submitted"]',
    }
    assert to_changes("1717000000000-3", fields) == FRAMES
    assert to_changes("1717000000000-3", fields, after="1717000000000-2") == FRAMES[1:]


def test_an_entry_written_with_the_state_in_each_change() -> None:
    rows = [[*row, "submitted"] for row in ROWS]
    fields = {"intentId": "intent-1", "changes": orjson.dumps(rows).decode()}
    assert to_changes("1717000000000-3", fields) == FRAMES


def test_an_entry_of_one_change() -> None:
    frame = FRAMES[1]
    fields = {
        "intentId": "intent-1",
        "seq": "2",
        "topic": "risk.approved",
        "state": "submitted",
        "eventId": "e2",
        "ms": "11",
        "data": orjson.dumps(DATA[1]).decode(),
    }
    assert to_changes("1717000000000-3", fields) == [frame]
    assert to_changes("1717000000000-3", fields, after="1717000000000-3") == []
