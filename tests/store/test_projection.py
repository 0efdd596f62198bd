"""``merge``: one intent's projections -> what the apply script writes (pure, no Redis)."""

from __future__ import annotations

import itertools
import random

import pytest

from pipeline.store.projection import Merged, Projection, guard_of, merge


def proj(
    seq: int,
    intent: dict[str, str],
    *,
    plan_id: str = "",
    plan: dict[str, str] | None = None,
    prices: dict[str, str] | None = None,
    ms: int = 1_000,
    event_id: str = "",
) -> Projection:
    return Projection(
        intent_id="intent-1",
        seq=seq,
        topic=f"t{seq}",
        state="",
        stage="s",
        ms=ms,
        event_id=event_id or f"e{seq}",
        intent=intent,
        plan_id=plan_id,
        plan=plan or {},
        prices=prices or {},
    )


EVENTS = [
    proj(1, {"strategyId": "s1", "updatedAt": "t1", "type": "DISPOSE"}),
    proj(3, {"updatedAt": "t3", "reason": "r3"}, plan_id="p", plan={"status": "planned"}),
    proj(
        5,
        {"updatedAt": "t5", "fill:a": "{}"},
        plan_id="p",
        plan={"status": "filled", "step:a:status": "filled"},
        prices={"WETH": "3000"},
        ms=2_000,
    ),
    proj(4, {"reason": "r4"}, plan_id="p-r1", plan={"status": "submitted"}, prices={"WETH": "1"}),
]


def as_tuple(m: Merged) -> tuple[object, ...]:
    return (
        [p.seq for p in m.events],
        m.strategy,
        m.intent,
        m.intent_guards,
        m.plans,
        m.prices,
    )


def test_each_field_keeps_the_value_of_its_highest_seq() -> None:
    m = merge(EVENTS)
    assert [p.seq for p in m.events] == [1, 3, 4, 5]
    assert m.strategy == "s1"
    assert m.intent["updatedAt"] == "t5"
    assert m.intent["reason"] == "r4"  # seq 4 beats seq 3
    assert m.intent["type"] == "DISPOSE"
    assert m.intent_guards == {
        "strategyId": guard_of(1),
        "updatedAt": guard_of(5),
        "type": guard_of(1),
        "reason": guard_of(4),
        "fill:a": guard_of(5),
    }
    values, guards = m.plans["p"]
    assert values == {"status": "filled", "step:a:status": "filled"}
    assert guards == {"status": guard_of(5), "step:a:status": guard_of(5)}
    assert m.plans["p-r1"] == ({"status": "submitted"}, {"status": guard_of(4)})
    # Prices are guarded by time then event id, not by seq: the later fill (ms 2000) wins.
    assert m.prices == {"WETH": ("3000", "0000000002000:e5")}


def test_any_order_and_duplicates_merge_the_same() -> None:
    expected = as_tuple(merge(EVENTS))
    for order in itertools.permutations(EVENTS):
        assert as_tuple(merge(order)) == expected
    rng = random.Random(3)
    for _ in range(20):
        doubled = EVENTS + rng.sample(EVENTS, 3)
        rng.shuffle(doubled)
        assert as_tuple(merge(doubled)) == expected


def test_a_seq_given_twice_is_one_event() -> None:
    first = proj(2, {"reason": "first"})
    again = proj(2, {"reason": "again"})  # the same seq: only one of them is the event
    m = merge([first, again])
    assert [p.seq for p in m.events] == [2]
    assert m.events[0] is first
    assert m.intent == {"reason": "first"}


def test_guards_compare_like_seqs() -> None:
    assert guard_of(9) < guard_of(10) < guard_of(1_000_000_000)


def test_nothing_to_merge_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge([])
