"""The lane policy as pure decisions: weighted shares, guaranteed minimum shares, what to
pause, and a pass sized to a time budget."""

from __future__ import annotations

import pytest

from pipeline.runtime.delivery.lanes import Lane, PassSizer, allocate, policy_of, to_pause
from pipeline.topology import load_topology
from tests.lanes_support import lanes_on

LANES = (Lane("fast", 8, 0.0), Lane("normal", 2, 0.1), Lane("bulk", 1, 0.1))


def test_min_shares_first_then_the_rest_by_weight_water_filled() -> None:
    # fast has 12: it takes them all; normal and bulk get 10 each, then 8:2:1 of the rest,
    # and what fast cannot use goes to them, 2:1.
    assert allocate([12, 900, 4000], LANES, 100) == [12, 56, 32]


def test_a_flood_of_urgent_records_still_leaves_routine_its_minimum_share() -> None:
    take = allocate([10_000, 10_000, 10_000], LANES, 100)
    assert sum(take) == 100
    assert take[1] >= 10
    assert take[2] >= 10
    assert take[0] > take[1] > take[2]  # weights still order what is left


def test_a_lane_alone_gets_the_whole_pass_and_never_more_than_it_has() -> None:
    assert allocate([0, 0, 500], LANES, 100) == [0, 0, 100]
    assert allocate([3, 0, 0], LANES, 100) == [3, 0, 0]
    assert allocate([0, 0, 0], LANES, 100) == [0, 0, 0]


@pytest.mark.parametrize("capacity", [1, 2, 3, 7, 64, 500])
@pytest.mark.parametrize(
    "queued", [[0, 5, 5], [1, 1, 1], [400, 3, 0], [5, 400, 400], [1000, 1000, 1000]]
)
def test_a_pass_is_never_over_capacity_and_takes_all_it_can(
    capacity: int, queued: list[int]
) -> None:
    take = allocate(queued, LANES, capacity)
    assert sum(take) == min(capacity, sum(queued))
    assert all(0 <= t <= q for t, q in zip(take, queued, strict=True))


def test_routine_starves_never_even_at_a_pass_of_one_record_over_time() -> None:
    # Capacity 10 (a tight budget) and an endless urgent flood: routine still moves.
    queued = [10_000, 10_000, 10_000]
    taken = [0, 0, 0]
    for _ in range(100):
        for i, n in enumerate(allocate(queued, LANES, 10)):
            taken[i] += n
            queued[i] -= n
    assert taken[1] >= 100
    assert taken[2] >= 100


def test_routine_lanes_are_paused_while_more_than_a_pass_is_queued_never_the_first() -> None:
    assert to_pause([10_000, 50, 101], LANES, 100) == {"bulk"}
    assert to_pause([10_000, 100, 100], LANES, 100) == set()
    assert to_pause([0, 500, 500], LANES, 100) == {"normal", "bulk"}


def sized(sizer: PassSizer, batch_max: int = 500, rounds: int = 8) -> list[int]:
    return [sizer.capacity(batch_max) for _ in range(rounds)]


def about(sizes: list[int], expected: list[int]) -> bool:
    """The distinct sizes, each within a record of ``expected`` (float rounding)."""
    got = sorted(set(sizes))
    return len(got) == len(expected) and all(
        abs(a - b) <= 1 for a, b in zip(got, expected, strict=True)
    )


def test_a_pass_is_sized_to_the_budget_from_the_fitted_fixed_and_per_record_costs() -> None:
    sizer = PassSizer(0.020)
    assert sizer.capacity(500) == 500  # nothing measured yet
    for n in (10, 20, 40, 80):  # 2 ms a pass plus 0.1 ms a record
        sizer.observe(n, 0.002 + 0.0001 * n)
    fixed, per_record = sizer.fit() or (0.0, 0.0)
    assert abs(fixed - 0.002) < 1e-9
    assert abs(per_record - 0.0001) < 1e-9
    # (20 - 2) ms / 0.1 ms = 180 records, varied around that so the fit stays possible
    assert about(sized(sizer), [108, 180, 252])
    assert max(sized(sizer, batch_max=50)) == 50  # never over batch.max


def test_when_the_fixed_cost_eats_the_budget_a_pass_spends_as_much_on_records() -> None:
    sizer = PassSizer(0.020)
    for n in (1, 5, 10, 20):  # 80 ms a pass (a busy machine), 2 ms a record
        sizer.observe(n, 0.080 + 0.002 * n)
    # Sized by time per record alone this would be one record a pass, for ever; here the
    # records take as long as the fixed part: 80 / 2 = 40, varied.
    assert about(sized(sizer), [24, 40, 56])


def test_one_stalled_pass_does_not_shrink_the_next_ones_to_a_record() -> None:
    sizer = PassSizer(0.020)
    for n in (10, 20, 10, 20, 10, 20, 10, 20):
        sizer.observe(n, 0.001 * n)  # 1 ms a record, no fixed cost
    sizer.observe(1, 1.0)  # the process did not get a core for a second
    assert min(sized(sizer)) > 1
    assert all(n >= 1 for n in sized(PassSizer(0.001)))


def test_the_policy_comes_from_topology_yaml() -> None:
    assert policy_of(load_topology()) is None  # declared, but off by default
    topology = lanes_on()
    policy = policy_of(topology)
    assert policy is not None
    assert [lane.topic for lane in policy.lanes] == [
        "sep.intents.ingested.fast",
        "sep.intents.ingested.normal",
        "sep.intents.ingested.bulk",
    ]
    assert policy.scheduled == {"ingest", "validate"}
    assert policy.lanes_for("validate") == policy.lanes
    # Ingest takes its passes from the input lanes; the plain input topic (unlabelled
    # submissions) is one more lane, weighted and guaranteed as the normal lane, after it.
    assert [(lane.topic, lane.weight, lane.min_share) for lane in policy.lanes_for("ingest")] == [
        ("sep.intents.submitted.fast", 8, 0.0),
        ("sep.intents.submitted.normal", 2, 0.1),
        ("sep.intents.submitted", 2, 0.1),
        ("sep.intents.submitted.bulk", 1, 0.1),
    ]
    assert policy.lanes_for("project") == ()  # reads lane topics, in fetch order
    assert policy.budget_s is None  # passes by batch.max unless pass_budget_ms is set
    assert policy_of(topology.model_copy(update={"lanes": None})) is None


def test_an_unlabelled_backlog_is_paused_like_a_routine_lane() -> None:
    policy = policy_of(lanes_on())
    assert policy is not None
    ingest = policy.lanes_for("ingest")
    assert to_pause([5, 0, 2_000, 0], ingest, 500) == {"sep.intents.submitted"}
    # ... and a pass still takes its share while urgent submissions flood in.
    assert allocate([10_000, 0, 10_000, 0], ingest, 500)[2] >= 50
