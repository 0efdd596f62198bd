"""Remembered decisions: stored and recalled byte for byte, forgotten after their TTL."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
