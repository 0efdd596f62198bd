"""Uniswap V3 math: known values, validation, and the Rust operators equal to the pure-Python
twin (``pipeline.ops.twin.v3``) exactly, on random pools with random tick layouts and random
swaps that cross ticks and word boundaries, both directions, exact input and exact output."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.ops as rust
from pipeline.models.market import PoolState, TickLiquidity
from pipeline.ops import twin
from pipeline.ops.v3 import v3_pool, zero_for_one

SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
RESULT_FIELDS = (
    "amount_in_used",
    "amount_out",
    "fee_amount",
    "sqrt_price_after",
    "tick_after",
    "liquidity_after",
    "ticks_crossed",
)
FEE_TIERS = ((100, 1), (500, 10), (3000, 60), (10_000, 200))
Q96 = 2**96


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """A call's plain result (a swap result as its fields) or its error."""
    try:
        value = call()
    except rust.RustOpsError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc))
    except TypeError:
        return ("TypeError",)
    if hasattr(value, "ticks_crossed"):
        return ("ok", tuple(getattr(value, f) for f in RESULT_FIELDS))
    return ("ok", value)


def both(call: Callable[[ModuleType], Any]) -> tuple[Any, ...]:
    """Runs ``call`` on both implementations, asserts they agree, returns the outcome."""
    expected = outcome(lambda: call(twin))
    assert outcome(lambda: call(rust)) == expected
    return expected


# --- known values ---------------------------------------------------------------------------


def test_tick_bounds(ops: ModuleType) -> None:
    assert (ops.MIN_TICK, ops.MAX_TICK) == (-887272, 887272)
    assert ops.MIN_SQRT_RATIO == ops.sqrt_ratio_at_tick(ops.MIN_TICK) == 4295128739
    assert ops.sqrt_ratio_at_tick(ops.MAX_TICK) == ops.MAX_SQRT_RATIO


@pytest.mark.parametrize(
    ("tick", "ratio"),
    [
        (-887272, 4295128739),
        (-887271, 4295343490),
        (887271, 1461373636630004318706518188784493106690254656249),
        (887272, 1461446703485210103287273052203988822378723970342),
        (0, Q96),
        (1, 79232123823359799118286999568),
        (-1, 79224201403219477170569942574),
    ],
)
def test_tick_math_contract_values(ops: ModuleType, tick: int, ratio: int) -> None:
    assert ops.sqrt_ratio_at_tick(tick) == ratio
    if tick < ops.MAX_TICK:
        assert ops.tick_at_sqrt_ratio(ratio) == tick


def test_tick_math_errors() -> None:
    assert both(lambda m: m.sqrt_ratio_at_tick(887273))[2] == "out_of_range"
    assert both(lambda m: m.tick_at_sqrt_ratio(m.MAX_SQRT_RATIO))[2] == "out_of_range"
    assert both(lambda m: m.tick_at_sqrt_ratio(-1))[2] == "out_of_range"
    assert both(lambda m: m.tick_at_sqrt_ratio(2**300))[2] == "out_of_range"
    assert both(lambda m: m.sqrt_ratio_at_tick("1")) == ("TypeError",)


def make(
    ops: ModuleType,
    fee: int,
    spacing: int,
    tick: int,
    positions: list[tuple[int, int, int]],
    price_offset: int = 0,
    with_ticks: bool = True,
) -> Any:
    """A pool at ``sqrt_ratio_at_tick(tick) + price_offset`` with ``(lower, upper, L)``
    positions; the liquidity is derived from them, so the state is consistent."""
    net: dict[int, int] = {}
    for lo, hi, liquidity in positions:
        net[lo] = net.get(lo, 0) + liquidity
        net[hi] = net.get(hi, 0) - liquidity
    price = ops.sqrt_ratio_at_tick(tick) + price_offset
    pool_tick = ops.tick_at_sqrt_ratio(price)
    active = sum(n for t, n in net.items() if t <= pool_tick)
    ticks = tuple(sorted(net.items())) if with_ticks else None
    return ops.V3Pool(price, active, pool_tick, spacing, fee, ticks)


def test_one_range_swap(ops: ModuleType) -> None:
    pool = make(ops, 3000, 60, 0, [(-600, 600, 10**18)])
    assert ops.v3_amount_out(pool, True, 10**15) == 996006981039903
    r = pool.swap_exact_in(True, 10**15)
    assert (r.amount_in_used, r.fee_amount, r.ticks_crossed) == (10**15, 3 * 10**12, 0)
    assert r.tick_after == ops.tick_at_sqrt_ratio(r.sqrt_price_after)
    # Exact output needs a little more than the exact input that gives it.
    assert ops.v3_amount_in(pool, True, 996006981039903) <= 10**15


def test_crossing_ticks_changes_liquidity(ops: ModuleType) -> None:
    pool = make(ops, 500, 10, 5, [(-100, 100, 10**18), (-20, 20, 9 * 10**18)])
    assert pool.liquidity == 10 * 10**18
    # Down from tick 5 past -20 (about 1.25e16 of token0), not as far as -100.
    r = pool.swap_exact_in(True, 14 * 10**15)
    assert (r.ticks_crossed, r.liquidity_after, r.amount_in_used) == (1, 10**18, 14 * 10**15)
    assert -100 < r.tick_after < -20
    # Up past 20 (about 7.5e15 of token0 out), not as far as 100.
    r = pool.swap_exact_out(False, 10**16)
    assert (r.ticks_crossed, r.liquidity_after, r.amount_out) == (1, 10**18, 10**16)
    assert 20 <= r.tick_after < 100
    # Draining everything: the price stops at its limit and crosses the outer tick too.
    r = pool.swap_exact_in(True, 10**30)
    assert r.amount_in_used < 10**30
    assert (r.liquidity_after, r.ticks_crossed) == (0, 2)
    assert r.sqrt_price_after == ops.MIN_SQRT_RATIO + 1
    assert (
        both(lambda m: m.v3_amount_out(make(m, 500, 10, 5, [(-100, 100, 10**18)]), True, 10**30))[2]
        == "insufficient_liquidity"
    )
    assert (
        both(lambda m: m.v3_amount_in(make(m, 500, 10, 5, [(-100, 100, 10**18)]), False, 10**30))[2]
        == "insufficient_liquidity"
    )


def test_without_ticks_the_pool_stays_in_range(ops: ModuleType) -> None:
    full = make(ops, 3000, 60, 30, [(-6000, 6000, 10**22)])
    bare = make(ops, 3000, 60, 30, [(-6000, 6000, 10**22)], with_ticks=False)
    assert bare.ticks is None
    assert bare.swap_exact_in(True, 10**16) == full.swap_exact_in(True, 10**16) or ops is rust
    assert ops.v3_amount_out(bare, True, 10**16) == ops.v3_amount_out(full, True, 10**16)
    with pytest.raises(ops.PoolMathError, match=r"leaves ticks \[0, 60\)") as err:
        bare.swap_exact_in(True, 10**21)
    assert err.value.code == "range_exceeded"


def test_price_limit_and_zero(ops: ModuleType) -> None:
    pool = make(ops, 3000, 60, 0, [(-600, 600, 10**18)])
    with pytest.raises(ops.PoolMathError) as err:
        pool.swap_exact_in(True, 1, pool.sqrt_price_x96 + 1)
    assert err.value.code == "price_limit"
    limit = ops.sqrt_ratio_at_tick(-10)
    r = pool.swap_exact_in(True, 10**30, limit)
    assert r.sqrt_price_after == limit
    assert r.amount_in_used < 10**30
    r = pool.swap_exact_out(False, 0)
    assert (r.amount_in_used, r.amount_out, r.sqrt_price_after) == (0, 0, pool.sqrt_price_x96)


# --- validation -----------------------------------------------------------------------------

P = 79228162514264337593543950336  # tick 0
BAD_POOLS: list[tuple[tuple[Any, ...], str]] = [
    ((-1, 0, 0, 60, 3000), "out_of_range"),
    ((2**160, 0, 0, 60, 3000), "out_of_range"),
    ((P, 2**128, 0, 60, 3000), "out_of_range"),
    ((P, 0, 2**23, 60, 3000), "out_of_range"),
    ((P, 0, 0, 60, 2**24), "out_of_range"),
    ((P, 0, 0, 60, 1_000_000), "fee_out_of_range"),
    ((P, 0, 0, 0, 3000), "tick_spacing_out_of_range"),
    ((P, 0, 0, 16384, 3000), "tick_spacing_out_of_range"),
    ((1, 0, 0, 60, 3000), "sqrt_price_out_of_range"),
    ((P, 0, 1, 60, 3000), "tick_mismatch"),
    ((P + 1, 0, -1, 60, 3000), "tick_mismatch"),
    ((P, 5, 0, 60, 3000, [(-60, 5), (30, -5)]), "tick_not_usable"),
    ((P, 5, 0, 60, 3000, [(-887280, 5), (60, -5)]), "tick_not_usable"),
    ((P, 5, 0, 60, 3000, [(-(2**23) - 1, 5), (60, -5)]), "out_of_range"),
    ((P, 5, 0, 1, 3000, [(-887273, 5), (60, -5)]), "tick_not_usable"),
    ((P, 5, 0, 60, 3000, [(60, 5), (-60, -5)]), "ticks_not_sorted"),
    ((P, 5, 0, 60, 3000, [(-60, 5), (-60, -5)]), "ticks_not_sorted"),
    ((P, 5, 0, 60, 3000, [(-60, 5), (60, -4)]), "liquidity_net_inconsistent"),
    ((P, 5, 0, 60, 3000, [(-60, -5), (60, 5)]), "liquidity_net_inconsistent"),
    ((P, 5, 0, 60, 3000, [(-60, 2**127), (60, -5)]), "out_of_range"),
    ((P, 4, 0, 60, 3000, [(-60, 5), (60, -5)]), "liquidity_mismatch"),
    ((P, 0, -1, 60, 3000, [(0, 5), (60, -5)]), "ok"),  # just crossed tick 0 downwards
    ((P, 5, 0, 60, 3000, [(0, 5), (60, -5)]), "ok"),
    ((P, 5, 0, 60, 3000, [(-60, 5), (0, 0), (60, -5)]), "ok"),
]


@pytest.mark.parametrize(("args", "code"), BAD_POOLS)
def test_invalid_pools_are_named(args: tuple[Any, ...], code: str) -> None:
    result = both(lambda m: repr(m.V3Pool(*args)))
    if code == "ok":
        assert result[0] == "ok"
    else:
        assert result[:3] == ("error", "InvalidV3PoolError", code)


@pytest.mark.parametrize(
    "args",
    [
        ("1", 0, 0, 60, 3000),
        (P, 0, 0, 60, 3000, [[0, 5]]),
        (P, 0, 0, 60, 3000, [(0, 5, 1)]),
        (P, 0, 0, 60, 3000, 7),
    ],
)
def test_non_ints_are_type_errors(args: tuple[Any, ...]) -> None:
    assert both(lambda m: m.V3Pool(*args)) == ("TypeError",)


def test_swap_argument_errors() -> None:
    def pool(m: ModuleType) -> Any:
        return make(m, 3000, 60, 0, [(-600, 600, 10**18)])

    assert both(lambda m: pool(m).swap_exact_in(True, -1))[2] == "out_of_range"
    assert both(lambda m: pool(m).swap_exact_out(True, 2**255))[2] == "out_of_range"
    assert both(lambda m: pool(m).swap_exact_in(True, 1, 2**160))[2] == "out_of_range"
    assert both(lambda m: pool(m).swap_exact_in(False, 1, 5))[2] == "price_limit"
    assert both(lambda m: m.v3_amount_out(pool(m), 1, 5)) == ("TypeError",)
    assert both(lambda m: m.v3_amount_in(pool(m), True, 1.5)) == ("TypeError",)


# --- Rust == twin on random pools -------------------------------------------------------------


@st.composite
def pools(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments of :func:`make`: a fee tier, a tick, 1-5 positions on the grid (some wide
    enough to span several 256-spacing words, some not holding the price), a price offset
    inside the tick (or exactly on it)."""
    fee, spacing = draw(st.sampled_from(FEE_TIERS))
    tick = draw(st.integers(-50_000, 50_000))
    width = st.integers(0, draw(st.sampled_from((3, 30, 600))))
    positions = []
    for _ in range(draw(st.integers(1, 5))):
        lo = (tick // spacing - draw(width)) * spacing
        hi = (tick // spacing + 1 + draw(width)) * spacing
        if draw(st.booleans()):  # sometimes a range away from the price
            shift = draw(st.integers(-20, 20)) * spacing
            lo, hi = lo + shift, hi + shift
        positions.append((lo, hi, draw(st.integers(1, 2**100))))
    return {
        "fee": fee,
        "spacing": spacing,
        "tick": tick,
        "positions": positions,
        "price_offset": draw(st.one_of(st.just(0), st.integers(0, 2**64))),
    }


amounts = st.integers(1, 120).flatmap(lambda bits: st.integers(1, 2**bits))
with_tick_data = st.sampled_from((True, True, True, False))


@SETTINGS
@given(
    spec=pools(),
    zfo=st.booleans(),
    exact_in=st.booleans(),
    amount=amounts,
    with_ticks=with_tick_data,
)
def test_swaps_agree(
    spec: dict[str, Any], zfo: bool, exact_in: bool, amount: int, with_ticks: bool
) -> None:
    def swap(m: ModuleType) -> Any:
        pool = make(m, **spec, with_ticks=with_ticks)
        method = pool.swap_exact_in if exact_in else pool.swap_exact_out
        return method(zfo, amount)

    result = both(swap)
    if result[0] == "error":
        assert result[2] in ("range_exceeded", "price_limit", "InvalidV3PoolError")


@SETTINGS
@given(spec=pools(), zfo=st.booleans(), amount=amounts)
def test_quotes_agree_and_round_trip(spec: dict[str, Any], zfo: bool, amount: int) -> None:
    out = both(lambda m: m.v3_amount_out(make(m, **spec), zfo, amount))
    if out[0] == "ok" and out[1] > 0:
        needed = both(lambda m: m.v3_amount_in(make(m, **spec), zfo, out[1]))
        assert needed[0] == "ok"
        assert needed[1] <= amount
    needed = both(lambda m: m.v3_amount_in(make(m, **spec), zfo, amount))
    if needed[0] == "ok":
        got = both(lambda m: m.v3_amount_out(make(m, **spec), zfo, needed[1]))
        assert got[0] == "ok"
        assert got[1] >= amount


@SETTINGS
@given(tick=st.integers(-887272, 887272), offset=st.integers(0, 2**96))
def test_tick_math_agrees(tick: int, offset: int) -> None:
    ratio = both(lambda m: m.sqrt_ratio_at_tick(tick))[1]
    both(lambda m: m.tick_at_sqrt_ratio(ratio + offset))


@SETTINGS
@given(
    spec=pools(),
    ticks=st.lists(st.tuples(st.integers(-1000, 1000), st.integers(-(2**20), 2**20)), max_size=4),
    liquidity=st.integers(0, 2**21),
)
def test_random_malformed_pools_agree(
    spec: dict[str, Any], ticks: list[tuple[int, int]], liquidity: int
) -> None:
    tick = spec["tick"] // 200
    both(
        lambda m: repr(
            m.V3Pool(
                m.sqrt_ratio_at_tick(tick), liquidity, tick, spec["spacing"], spec["fee"], ticks
            )
        )
    )


def test_random_swaps_reach_the_interesting_paths() -> None:
    """The strategies above cross ticks and word boundaries, drain pools and leave the known
    range of tick-less pools often enough, so the agreement is not vacuous."""
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(
        spec=pools(),
        zfo=st.booleans(),
        exact_in=st.booleans(),
        amount=amounts,
        with_ticks=with_tick_data,
    )
    def run(spec: dict[str, Any], zfo: bool, exact_in: bool, amount: int, with_ticks: bool) -> None:
        pool = make(rust, **spec, with_ticks=with_ticks)
        try:
            r = (pool.swap_exact_in if exact_in else pool.swap_exact_out)(zfo, amount)
        except rust.PoolMathError as exc:
            seen[exc.code] += 1
            return
        seen["crossed"] += r.ticks_crossed > 0
        seen["several crossed"] += r.ticks_crossed > 1
        seen["drained"] += (r.amount_in_used if exact_in else r.amount_out) < amount
        seen["in range"] += not with_ticks

    run()
    for path, least in (
        ("crossed", 20),
        ("several crossed", 5),
        ("drained", 5),
        ("range_exceeded", 5),
        ("in range", 5),
    ):
        assert seen[path] >= least, seen


# --- the PoolState helper and the GIL ---------------------------------------------------------


def test_v3_pool_from_pool_state() -> None:
    state = PoolState(
        pool_id="p",
        venue="uniswap_v3",
        kind="concentrated",
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=1,
        reserve1=1,
        fee=3000,
        sqrt_price_x96=P,
        liquidity=5,
        tick=0,
        tick_spacing=60,
        ticks=(TickLiquidity(tick=-60, liquidity_net=5), TickLiquidity(tick=60, liquidity_net=-5)),
    )
    pool = v3_pool(state)
    assert isinstance(pool, rust.V3Pool)
    assert pool.ticks == ((-60, 5), (60, -5))
    assert repr(v3_pool(state, twin.V3Pool)) == repr(pool)
    assert v3_pool(state.model_copy(update={"ticks": None})).ticks is None
    assert zero_for_one(state, "WETH")
    assert not zero_for_one(state, "USDC")
    with pytest.raises(ValueError, match="not a token"):
        zero_for_one(state, "DAI")
    with pytest.raises(ValueError, match="not a Uniswap V3 pool"):
        v3_pool(state.model_copy(update={"kind": "constant_product"}))


def test_swaps_run_in_threads() -> None:
    pool = make(rust, 100, 1, 0, [(-3000, 3000, 10**18), (-100, 100, 10**20)])
    expected = pool.swap_exact_in(True, 10**19)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(pool.swap_exact_in(True, 10**19)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4
