"""Remembered decisions: stored and recalled byte for byte, forgotten after their TTL."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pipeline.models.events import Event, ExecStarted, make_event
from pipeline.stages.base import MemoryTable, Output, Record
from pipeline.stages.decisions import SWEEP_EVERY_S, Decisions, decode_outputs, encode_outputs


def record(partition: int = 3) -> Record:
    return Record("sep.intents.prioritised", partition, 7, 0, b"k", b"{}")


outputs = st.lists(
    st.builds(
        Output,
        st.text(min_size=1, max_size=20),
        st.binary(max_size=40),
        st.binary(max_size=200),
        st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=20)), max_size=3).map(tuple),
    ),
    max_size=4,
)


@given(outputs, st.integers(0, 1000))
def test_outputs_round_trip_exactly(given_outputs: list[Output], partition: int) -> None:
    assert decode_outputs(encode_outputs(given_outputs, partition)) == (partition, given_outputs)


def test_events_are_kept_as_text_and_other_bytes_in_base64() -> None:
    value = encode_outputs([Output("sep.plans", b"intent-a", b'{"a":"1"}', (("h", b"\xff"),))], 1)
    assert orjson.loads(value) == {
        "v": 2,
        "p": 1,
        "o": [["sep.plans", "intent-a", '{"a":"1"}', [["h", ["/w=="]]]]],
    }


def test_an_entry_in_the_first_format_is_still_read() -> None:
    # Written by a worker before format 2 (every byte string in base64): a rolling upgrade
    # recovers such entries from the changelog for up to their TTL.
    old = '{"p":5,"o":[["sep.plans","aW50ZW50LWE=","b2xk",[["h","/w=="]]]]}'
    assert decode_outputs(old) == (5, [Output("sep.plans", b"intent-a", b"old", (("h", b"\xff"),))])


def test_a_remembered_decision_is_recalled_and_a_new_intent_is_not() -> None:
    decisions = Decisions(MemoryTable())
    sent = [Output("sep.plans", b"intent-a", b'{"topic":"plan.created"}')]
    assert decisions.recall("intent-a") is None
    decisions.remember("intent-a", sent, record())
    assert decisions.recall("intent-a") == sent
    assert decisions.recall("intent-b") is None
    assert decisions.recalled == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TombstoneTable(MemoryTable):
    def __init__(self) -> None:
        super().__init__()
        self.tombstones: list[tuple[str, int]] = []

    def delete(self, key: str, partition: int) -> None:
        self.tombstones.append((key, partition))
        super().delete(key, partition)


def test_entries_are_forgotten_a_ttl_after_this_process_first_saw_them() -> None:
    table, clock = TombstoneTable(), Clock()
    # Recovered from the changelog before this process started: its clock starts at the
    # first sweep, since a redelivery comes right after start-up.
    table["intent-old"] = encode_outputs([Output("t", b"", b"old")], 5)
    decisions = Decisions(table, ttl_s=100, clock=clock)
    decisions.remember("intent-new", [Output("t", b"", b"new")], record(partition=2))

    assert decisions.sweep() == 0  # not yet time to sweep
    clock.now += SWEEP_EVERY_S
    assert decisions.sweep() == 0  # both younger than the TTL
    assert set(table) == {"intent-old", "intent-new"}

    clock.now = 1000.0 + 100  # the new one is 100 s old; the old one was first seen at +30
    assert decisions.sweep() == 1
    assert table.tombstones == [("intent-new", 2)]
    assert decisions.recall("intent-new") is None
    assert decisions.recall("intent-old") is not None

    clock.now += SWEEP_EVERY_S * 3
    assert decisions.sweep() == 1
    assert table.tombstones[-1] == ("intent-old", 5)
    assert dict(table) == {}


def _event(intent_id: str, seq: int = 1) -> Event:
    return make_event(
        "exec.started",
        ExecStarted(plan_id=f"plan-{intent_id}", steps=1),
        correlation_id=intent_id,
        seq=seq,
        causation_id=None,
        at_ms=1_000,
        id_ms=1_000,
    )


def test_unanswered_is_one_event_per_intent_without_an_answer() -> None:
    decisions = Decisions(MemoryTable())
    record = Record("t", 0, 0, 0, None, b"")
    decisions.remember("a", [Output("out", b"a", b"old")], record)
    first_b, again_b, c = _event("b"), _event("b", 2), _event("c")
    assert decisions.unanswered([_event("a"), first_b, again_b, c]) == [first_b, c]


async def test_answer_decides_once_per_intent_and_re_emits_what_was_remembered() -> None:
    decisions = Decisions(MemoryTable())
    decisions.remember("a", [Output("out", b"a", b"given before")], Record("t", 0, 0, 0, None, b""))
    decided: list[str] = []
    sent: list[Output] = []
    seen: list[tuple[str, int]] = []

    def decide(event: Event) -> list[Output]:
        decided.append(event.correlation_id)
        return [Output("out", event.correlation_id.encode(), b"new")]

    async def emit(output: Output) -> None:
        sent.append(output)

    pairs = [(Record("in", 0, i, 0, None, b""), _event(k)) for i, k in enumerate("aba")]
    await decisions.answer(
        pairs, decide, emit, then=lambda e, o: seen.append((e.correlation_id, len(o)))
    )
    assert decided == ["b"]  # "a" was answered before; "b" once
    assert [(o.key, o.value) for o in sent] == [
        (b"a", b"given before"),
        (b"b", b"new"),
        (b"a", b"given before"),
    ]
    assert seen == [("a", 1), ("b", 1), ("a", 1)]
    assert decisions.recall("b") is not None
