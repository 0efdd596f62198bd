"""The planner's pending flow: effects applied with the router's math, released on the reports.

Expected states are written out independently (the constant-product formula below, the V3
twin) rather than taken from the module.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.models.base import WireModel
from pipeline.models.events import (
    Event,
    ExecCompleted,
    ExecFailed,
    ExecStarted,
    ExecStepFailed,
    ExecStepFilled,
    IntentExpired,
)
from pipeline.models.market import PoolState, TickLiquidity
from pipeline.models.plan import ExecutionPlan, ExecutionStep, RouteLeg, SwapMode
from pipeline.ops import twin
from pipeline.stages.execute import RECEIPT_GRACE_S
from pipeline.stages.pending_flow import (
    HOLD_S,
    UNHEARD_S,
    LegEffect,
    PendingFlow,
    RouteStats,
    apply_effect,
    apply_effects,
    plan_pools,
)

PPM = 1_000_000
E18 = 10**18
NOW = 1_700_000_000_000
DEADLINE = NOW + 300_000


def cp_out(r_in: int, r_out: int, x: int, fee: int) -> int:
    g = PPM - fee
    return x * g * r_out // (r_in * PPM + x * g)


def cp_in(r_in: int, r_out: int, y: int, fee: int) -> int:
    g = PPM - fee
    return -(-(y * r_in * PPM) // ((r_out - y) * g))


def pool(
    pool_id: str = "weth-usdc",
    token0: str = "WETH",
    token1: str = "USDC",
    reserve0: int = 1_000 * E18,
    reserve1: int = 3_000_000 * 10**6,
    fee: int = 3000,
    seq: int | None = 0,
    venue: str = "sim",
) -> PoolState:
    return PoolState(
        pool_id=pool_id,
        venue=venue,
        chain_id=1,
        token0=token0,
        token1=token1,
        reserve0=reserve0,
        reserve1=reserve1,
        fee=fee,
        seq=seq,
    )


def plan(
    intent: str,
    legs: list[tuple[str, str, str, int, int]],
    *,
    mode: SwapMode = SwapMode.EXACT_IN,
    venue: str = "sim",
    steps: int = 1,
) -> ExecutionPlan:
    """A plan of ``steps`` identical steps along ``legs`` (pool, token in, token out, in, out)."""
    route = tuple(
        RouteLeg(pool_id=p, venue=venue, token_in=a, token_out=b, amount_in=x, amount_out=y)
        for p, a, b, x, y in legs
    )
    return ExecutionPlan(
        id=f"plan-{intent}",
        intent_id=intent,
        steps=tuple(
            ExecutionStep(
                step_id=f"plan-{intent}-{k + 1}",
                venue=venue,
                mode=mode,
                legs=route,
                asset_in=legs[0][1],
                asset_out=legs[-1][2],
                amount_in=Decimal(1),
                min_out=Decimal(1),
                amount_out=Decimal(1),
                max_in=Decimal(1),
            )
            for k in range(steps)
        ),
        estimated_out=Decimal(1),
        estimated_cost=Decimal(0),
        estimated_duration_ms=0,
        risk_score=0,
        price_impact=Decimal(0),
    )


def sell_weth(intent: str, amount: int, pool_id: str = "weth-usdc") -> ExecutionPlan:
    return plan(intent, [(pool_id, "WETH", "USDC", amount, 0)])


def viewed(
    flow: PendingFlow, pools: Mapping[str, Sequence[PoolState]], now: int
) -> dict[str, list[PoolState]]:
    """``pools`` as the planner routes on them: the adjusted states in their places."""
    adjusted = flow.adjusted(pools, now)
    return {
        venue: [adjusted.get(venue, {}).get(s.pool_id, s) for s in states]
        for venue, states in pools.items()
    }


def only(view: Mapping[str, Sequence[PoolState]], venue: str = "sim") -> PoolState:
    (state,) = view[venue]
    return state


# ----------------------------------------------------------------------------- the math


def test_pending_sells_stack_in_the_order_planned() -> None:
    base = pool()
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", 10 * E18), NOW, DEADLINE)
    flow.add("i2", sell_weth("i2", 5 * E18), NOW, DEADLINE)
    state = only(viewed(flow, {"sim": [base]}, NOW))
    out1 = cp_out(base.reserve0, base.reserve1, 10 * E18, 3000)
    out2 = cp_out(base.reserve0 + 10 * E18, base.reserve1 - out1, 5 * E18, 3000)
    assert (state.reserve0, state.reserve1) == (
        base.reserve0 + 15 * E18,
        base.reserve1 - out1 - out2,
    )
    assert state.seq == base.seq  # the view says which published state it was built on


def test_an_exact_out_effect_takes_its_output_and_pays_the_least_input() -> None:
    base = pool()
    flow = PendingFlow()
    flow.add(
        "i1",
        plan("i1", [("weth-usdc", "USDC", "WETH", 0, 2 * E18)], mode=SwapMode.EXACT_OUT),
        NOW,
        DEADLINE,
    )
    state = only(viewed(flow, {"sim": [base]}, NOW))
    paid = cp_in(base.reserve1, base.reserve0, 2 * E18, 3000)
    assert (state.reserve0, state.reserve1) == (base.reserve0 - 2 * E18, base.reserve1 + paid)


def test_an_effect_is_replayed_on_the_pool_as_it_is_now() -> None:
    """The pool moved under a pending sell (another trade): the sell's output follows."""
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", 10 * E18), NOW, DEADLINE)
    moved = pool(reserve0=900 * E18, reserve1=3_400_000 * 10**6, seq=7)
    state = only(viewed(flow, {"sim": [moved]}, NOW))
    out = cp_out(moved.reserve0, moved.reserve1, 10 * E18, 3000)
    assert (state.reserve0, state.reserve1) == (moved.reserve0 + 10 * E18, moved.reserve1 - out)


def test_a_v3_effect_moves_price_tick_and_liquidity_as_the_twin_swaps() -> None:
    spacing, low, high = 60, -600, 600
    liquidity = 10**22
    price = twin.sqrt_ratio_at_tick(0) + 1
    ticks = (
        TickLiquidity(tick=low, liquidity_net=liquidity),
        TickLiquidity(tick=high, liquidity_net=-liquidity),
    )
    base = PoolState(
        pool_id="v3",
        venue="uniswap_v3",
        kind="concentrated",
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=1,
        reserve1=1,
        fee=3000,
        sqrt_price_x96=price,
        liquidity=liquidity,
        tick=0,
        tick_spacing=spacing,
        ticks=ticks,
        block=40,
    )
    after = apply_effect(base, LegEffect("s", "USDC", True, 10**20))
    expected = twin.V3Pool(
        price, liquidity, 0, spacing, 3000, ((low, liquidity), (high, -liquidity))
    ).swap_exact_in(False, 10**20)
    assert (after.sqrt_price_x96, after.tick, after.liquidity) == (
        expected.sqrt_price_after,
        expected.tick_after,
        expected.liquidity_after,
    )
    assert after.sqrt_price_x96 is not None
    assert after.sqrt_price_x96 > price
    q96 = 2**96
    assert (after.reserve0, after.reserve1) == (
        expected.liquidity_after * q96 // expected.sqrt_price_after,
        expected.liquidity_after * expected.sqrt_price_after // q96,
    )
    assert after.block == 40
    # Without its ticks a pool is known only inside its tick-spacing interval: an effect
    # beyond it cannot be applied (the router does not route there either); the state stays.
    blind = base.model_copy(update={"ticks": None})
    assert apply_effect(blind, LegEffect("s", "USDC", True, 10**20)) is blind


@pytest.mark.parametrize("seed", range(20))
def test_effects_applied_together_leave_what_one_at_a_time_would(seed: int) -> None:
    # ``apply_effects`` moves a constant-product pool's reserves and copies it once: the same
    # state as ``apply_effect`` after each effect in turn, including the effects a pool
    # cannot take (beyond its reserve, a token it does not hold), which are left out.
    rng = random.Random(seed)
    base = pool(reserve0=rng.randint(1, 2_000) * E18, reserve1=rng.randint(1, 5_000_000) * 10**6)
    effects = [
        LegEffect(
            f"s{k}",
            rng.choice(["WETH", "USDC", "USDC", "WETH", "DAI"]),
            rng.random() < 0.5,
            rng.choice([rng.randint(1, 50) * E18, rng.randint(1, 200_000) * 10**6, 10**40]),
        )
        for k in range(rng.randint(0, 40))
    ]
    one_at_a_time = base
    for effect in effects:
        one_at_a_time = apply_effect(one_at_a_time, effect)
    together = apply_effects(base, effects)
    assert together == one_at_a_time
    assert together.model_fields_set == one_at_a_time.model_fields_set
    if one_at_a_time is base:  # nothing moved it: the same object, so graphs skip it
        assert together is base


def test_effects_on_a_v3_pool_are_applied_one_at_a_time() -> None:
    base = PoolState(
        pool_id="v3",
        venue="sim",
        kind="concentrated",
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=1,
        reserve1=1,
        fee=3000,
        sqrt_price_x96=2**96,
        liquidity=10**24,
        tick=0,
        tick_spacing=60,
        ticks=(
            TickLiquidity(tick=-600, liquidity_net=10**24),
            TickLiquidity(tick=600, liquidity_net=-(10**24)),
        ),
    )
    effects = [LegEffect("a", "USDC", True, 10**18), LegEffect("b", "WETH", False, 10**17)]
    assert apply_effects(base, effects) == apply_effect(apply_effect(base, effects[0]), effects[1])


def test_a_multi_hop_step_is_pending_on_every_pool_it_crosses() -> None:
    first, second = pool(), pool("dai-usdc", "DAI", "USDC", 5_000_000 * E18, 5_000_000 * 10**6, 100)
    flow = PendingFlow()
    multi = plan(
        "i1",
        [
            ("weth-usdc", "WETH", "USDC", E18, 2_990 * 10**6),
            ("dai-usdc", "USDC", "DAI", 2_990 * 10**6, 0),
        ],
    )
    flow.add("i1", multi, NOW, DEADLINE)
    assert plan_pools(multi) == {("sim", "weth-usdc"), ("sim", "dai-usdc")}
    assert flow.carries([("sim", "dai-usdc")])
    assert not flow.carries([("sim", "other")])
    weth, dai = viewed(flow, {"sim": [first, second]}, NOW)["sim"]
    assert weth.reserve0 == first.reserve0 + E18
    assert dai.reserve1 == second.reserve1 + 2_990 * 10**6
    flow.failed("plan-i1-1")
    assert viewed(flow, {"sim": [first, second]}, NOW)["sim"][1] is second
    assert len(flow) == 0


def test_only_pools_with_effects_are_adjusted_and_an_unchanged_one_is_the_same_object() -> None:
    states = [pool(), pool("other", "DAI", "USDC")]
    flow = PendingFlow()
    assert flow.adjusted({"sim": states}, NOW) == {}
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    first = flow.adjusted({"sim": states}, NOW)
    assert set(first["sim"]) == {"weth-usdc"}
    assert flow.adjusted({"sim": states}, NOW)["sim"]["weth-usdc"] is first["sim"]["weth-usdc"]
    flow.add("i2", sell_weth("i2", E18), NOW, DEADLINE)
    assert (
        flow.adjusted({"sim": states}, NOW)["sim"]["weth-usdc"] is not (first["sim"]["weth-usdc"])
    )


# ----------------------------------------------------------------------------- release


def test_a_failed_step_or_an_ended_intent_is_released_at_once() -> None:
    base = pool()
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    flow.add("i2", sell_weth("i2", E18), NOW, DEADLINE)
    flow.failed("plan-i1-1")
    flow.ended("i2")  # exec.failed or intent.expired before anything filled
    assert only(viewed(flow, {"sim": [base]}, NOW)) is base
    assert len(flow) == 0


def test_a_filled_step_stays_until_the_pool_state_includes_it() -> None:
    """The report came first: releasing now would forget the trade until the state has it."""
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", 10 * E18), NOW, DEADLINE)
    flow.filled("plan-i1-1", 8)
    flow.ended("i1")  # exec.completed: the filled step is not released by it
    stale = pool(seq=7)
    assert only(viewed(flow, {"sim": [stale]}, NOW)).reserve0 == stale.reserve0 + 10 * E18
    assert flow.pending("sim", "weth-usdc") == 1
    included = pool(reserve0=1_010 * E18, reserve1=2_970_000 * 10**6, seq=8)
    assert only(viewed(flow, {"sim": [included]}, NOW)) is included
    assert len(flow) == 0


def test_a_state_that_includes_the_fill_before_its_report_counts_it_until_the_report() -> None:
    """The other order: the venue's state has the fill (seq 8), the report is not in yet.
    The effect is still counted (twice, one hop of sep.executions long); the report then
    releases it at once, the state already having that version."""
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", 10 * E18), NOW, DEADLINE)
    included = pool(reserve0=1_010 * E18, reserve1=2_970_000 * 10**6, seq=8)
    assert only(viewed(flow, {"sim": [included]}, NOW)) is not included
    flow.filled("plan-i1-1", 8)
    assert only(viewed(flow, {"sim": [included]}, NOW)) is included


def test_each_fill_is_released_by_its_own_version() -> None:
    flow = PendingFlow()
    for intent in ("i1", "i2", "i3"):
        flow.add(intent, sell_weth(intent, E18), NOW, DEADLINE)
    flow.filled("plan-i1-1", 11)
    flow.filled("plan-i2-1", 12)
    viewed(flow, {"sim": [pool(seq=11)]}, NOW)
    assert flow.pending("sim", "weth-usdc") == 2  # i2 landed after the state, i3 not yet
    viewed(flow, {"sim": [pool(seq=12)]}, NOW)
    assert flow.pending("sim", "weth-usdc") == 1


def test_a_chain_pool_is_released_by_the_block_it_was_read_at() -> None:
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    flow.filled("plan-i1-1", 100)  # the receipt's block
    viewed(flow, {"sim": [pool(seq=None).model_copy(update={"block": 99})]}, NOW)
    assert len(flow) == 1
    viewed(flow, {"sim": [pool(seq=None).model_copy(update={"block": 100})]}, NOW)
    assert len(flow) == 0


def test_without_versions_a_fill_is_released_with_its_report() -> None:
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    flow.add("i2", sell_weth("i2", E18), NOW, DEADLINE)
    flow.filled("plan-i1-1", None)  # a venue that cannot say where it landed
    assert len(flow) == 1
    flow.filled("plan-i2-1", 5)
    viewed(flow, {"sim": [pool(seq=None)]}, NOW)  # a state without a version: taken as current
    assert len(flow) == 0


def test_effects_expire_when_no_report_can_come_any_more() -> None:
    """Heard of (exec.started), an effect is held until the executor's last possible report:
    the deadline plus its receipt grace, or ``HOLD_S``, whichever comes first."""
    flow = PendingFlow()
    started = ExecStarted(plan_id="p", steps=1)
    flow.add("i1", sell_weth("i1", E18), NOW, NOW + 1_000)
    flow.add("i2", sell_weth("i2", E18), NOW, None)  # no deadline known
    for intent in ("i1", "i2"):
        flow.observe(event("exec.started", started, intent))
    grace = int(RECEIPT_GRACE_S * 1000)
    viewed(flow, {"sim": [pool()]}, NOW + 1_000 + grace - 1)
    assert len(flow) == 2
    viewed(flow, {}, NOW + 1_000 + grace)  # expiry needs no pools
    assert len(flow) == 1
    viewed(flow, {}, NOW + int(HOLD_S * 1000))
    assert len(flow) == 0


def test_a_plan_never_heard_of_is_dropped_early() -> None:
    """No report at all, not even exec.started: its reports go to another worker (the
    assignment is not co-partitioned); holding it until its deadline would skew the view."""
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    flow.add("i2", sell_weth("i2", E18), NOW, DEADLINE)
    flow.observe(event("exec.started", ExecStarted(plan_id="p", steps=1), "i2"))
    viewed(flow, {}, NOW + int(UNHEARD_S * 1000) - 1)
    assert len(flow) == 2
    viewed(flow, {}, NOW + int(UNHEARD_S * 1000))
    assert flow.pending("sim", "weth-usdc") == 1  # i2's executor is at work


def test_a_plan_added_twice_counts_once() -> None:
    base = pool()
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    assert flow.pending("sim", "weth-usdc") == 1
    assert only(viewed(flow, {"sim": [base]}, NOW)).reserve0 == base.reserve0 + E18


def test_split_plans_release_their_unfilled_steps_when_the_intent_fails() -> None:
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    split = plan("i2", [("weth-usdc", "WETH", "USDC", E18, 0)], steps=2)
    flow.add("i2", split, NOW, DEADLINE)
    flow.filled("plan-i2-1", 3)
    flow.ended("i2")  # step 2 failed: exec.failed
    assert flow.pending("sim", "weth-usdc") == 2  # i1, and i2's filled step 1


# ----------------------------------------------------------------------------- the reports


def event(topic: str, payload: WireModel, intent: str = "i1") -> Event:
    return Event(
        event_id="e",
        timestamp=datetime.now(UTC),
        topic=topic,
        correlation_id=intent,
        seq=6,
        payload=payload.to_wire(),
    )


@pytest.mark.parametrize(
    ("reports", "left"),
    [
        ([event("exec.started", ExecStarted(plan_id="plan-i1", steps=1))], 1),
        (
            [
                event(
                    "exec.step_failed",
                    ExecStepFailed(
                        plan_id="plan-i1", step_id="plan-i1-1", venue="sim", reason="slippage"
                    ),
                )
            ],
            0,
        ),
        ([event("exec.failed", ExecFailed(plan_id="plan-i1", reason="step 1 failed"))], 0),
        (
            [
                event(
                    "intent.expired",
                    IntentExpired(deadline_ms=1, observed_at_ms=2, stage="execute"),
                )
            ],
            0,
        ),
        (
            [
                event(
                    "exec.step_filled",
                    ExecStepFilled(
                        plan_id="plan-i1",
                        step_id="plan-i1-1",
                        venue="sim",
                        order_ref="r",
                        asset_in="WETH",
                        asset_out="USDC",
                        amount_in=Decimal(1),
                        amount_out=Decimal(3000),
                        landed_at=4,
                    ),
                ),
                event(
                    "exec.completed",
                    ExecCompleted(
                        plan_id="plan-i1",
                        asset_in="WETH",
                        asset_out="USDC",
                        amount_in=Decimal(1),
                        amount_out=Decimal(3000),
                        realised_slippage=Decimal(0),
                    ),
                ),
            ],
            1,
        ),  # until seq 4
        (
            [
                event(
                    "exec.completed",
                    ExecCompleted(
                        plan_id="plan-i1",
                        asset_in="WETH",
                        asset_out="USDC",
                        amount_in=Decimal(1),
                        amount_out=Decimal(3000),
                        realised_slippage=Decimal(0),
                    ),
                    intent="i2",
                )
            ],
            1,
        ),
    ],
)
def test_reports_off_sep_executions(reports: list[Event], left: int) -> None:
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    for report in reports:
        flow.observe(report)
    viewed(flow, {"sim": [pool(seq=3)]}, NOW)
    assert len(flow) == left


def test_route_stats_route_in_order_once_most_answers_are_routed_again() -> None:
    stats = RouteStats()
    assert stats.side_by_side()  # nothing known yet
    stats.count(routed=100, rerouted=90)
    decisions = [stats.side_by_side() for _ in range(2 * RouteStats.PROBE_EVERY)]
    assert decisions.count(True) == 2  # only the periodic probes
    stats.count(routed=2_000, rerouted=10)  # the probe found the batch's routes disjoint
    assert stats.side_by_side()


# ----------------------------------------------------------------------------- in a batch


def test_adjusted_touched_gives_what_adjusted_would_give_anew() -> None:
    pools = {
        "sim": [
            pool("weth-usdc"),
            pool("wbtc-usdc", token0="WBTC", reserve0=50 * 10**8),
            pool("dai-usdc", token0="DAI", reserve0=3_000_000 * E18),
        ]
    }
    touched, full = PendingFlow(), PendingFlow()
    for flow in (touched, full):
        flow.add("i0", sell_weth("i0", E18), NOW, DEADLINE)
        flow.adjusted(pools, NOW)
    before = full.adjusted(pools, NOW)
    for k, pool_id in enumerate(["wbtc-usdc", "weth-usdc", "wbtc-usdc"]):
        token = "WBTC" if pool_id == "wbtc-usdc" else "WETH"
        made = plan(f"i{k + 1}", [(pool_id, token, "USDC", 10**6 + k, 0)])
        touched.add(f"i{k + 1}", made, NOW, DEADLINE)
        full.add(f"i{k + 1}", made, NOW, DEADLINE)
        changed = touched.adjusted_touched(pools, NOW)
        after = full.adjusted(pools, NOW)
        assert changed is not None
        assert set(changed["sim"]) == {pool_id}
        # The pool planned on: the same state either way; the others: as before.
        assert changed["sim"][pool_id] == after["sim"][pool_id]
        for other, state in after["sim"].items():
            if other != pool_id:
                assert state is before["sim"][other]
        before = after
    assert touched.adjusted_touched(pools, NOW) == {}


def test_adjusted_touched_says_adjusted_is_needed_after_a_release_or_an_expiry() -> None:
    pools = {"sim": [pool()]}
    flow = PendingFlow()
    flow.add("i1", sell_weth("i1", E18), NOW, DEADLINE)
    flow.adjusted(pools, NOW)
    flow.failed("plan-i1-1")
    assert flow.adjusted_touched(pools, NOW) is None
    flow.adjusted(pools, NOW)
    assert flow.adjusted_touched(pools, NOW) == {}
    flow.add("i2", sell_weth("i2", E18), NOW, NOW - 60_000)  # its deadline long past
    assert flow.adjusted_touched(pools, NOW + 1) is None
