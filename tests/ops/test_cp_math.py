"""amount_out / amount_in: known values, errors and Rust-Python agreement."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

M = 2**128 - 1
E18 = 10**18

# (reserve_in, reserve_out, amount_in, fee, amount_out), worked by hand:
AMOUNT_OUT_CASES = [
    # 1000·997000·1e6 / (1e6·1e6 + 1000·997000) = 996.999… -> 996
    (1_000_000, 1_000_000, 1_000, 3000, 996),
    # one unit less: 999·997000·1e6 / (1e12 + 996003000) = 995.999… -> 995
    (1_000_000, 1_000_000, 999, 3000, 995),
    # no fee, exact division: 100·200 / (100 + 100)
    (100, 200, 100, 0, 100),
    # Uniswap V2 getAmountOut(1e18, 100e18, 100e18) at 0.30 %: 99700e36 / 100997e18
    (100 * E18, 100 * E18, E18, 3000, 987_158_034_397_061_298),
    # nothing in, nothing out
    (5, 5, 0, 3000, 0),
    # a 99.9999 % fee leaves 1000·1·1000 / (1000·1e6 + 1000) < 1
    (1000, 1000, 1000, 999_999, 0),
    # u128 extremes, no fee: M·M / 2M = M/2, floored
    (M, M, M, 0, M // 2),
    # tiny pool, huge input: the output approaches but never reaches the reserve
    (1, 2, M, 0, 1),
]

# (reserve_in, reserve_out, amount_out, fee, amount_in)
AMOUNT_IN_CASES = [
    # inverse of the first case above: 995 is not enough, 1000 is the least
    (1_000_000, 1_000_000, 996, 3000, 1000),
    # ceil(995·1e6·1e6 / ((1e6 - 995)·997000)) = ceil(998.98…) = 999
    (1_000_000, 1_000_000, 995, 3000, 999),
    # exact division needs exactly 100 (Uniswap V2's getAmountIn would say 101)
    (100, 200, 100, 0, 100),
    (100, 200, 0, 3000, 0),
    # a single unit out of a pool with a huge output reserve needs a single unit in
    (1, M, 1, 3000, 1),
]


@pytest.mark.parametrize(("r_in", "r_out", "a_in", "fee", "expected"), AMOUNT_OUT_CASES)
def test_amount_out_known_values(
    ops: ModuleType, r_in: int, r_out: int, a_in: int, fee: int, expected: int
) -> None:
    assert ops.amount_out(r_in, r_out, a_in, fee) == expected


@pytest.mark.parametrize(("r_in", "r_out", "a_out", "fee", "expected"), AMOUNT_IN_CASES)
def test_amount_in_known_values(
    ops: ModuleType, r_in: int, r_out: int, a_out: int, fee: int, expected: int
) -> None:
    assert ops.amount_in(r_in, r_out, a_out, fee) == expected
    if a_out:
        assert ops.amount_out(r_in, r_out, expected, fee) >= a_out
        assert ops.amount_out(r_in, r_out, expected - 1, fee) < a_out


def test_keywords_and_int_like_arguments(ops: ModuleType) -> None:
    class Units:
        def __index__(self) -> int:
            return 1_000

    got = ops.amount_out(reserve_in=1_000_000, reserve_out=1_000_000, amount_in=Units(), fee=3000)
    assert got == 996
    assert type(got) is int


BAD_CALLS: list[tuple[str, tuple[Any, ...], str, str]] = [
    ("amount_out", (-1, 1, 1, 0), "out_of_range",
     "reserve_in must be an int in 0..=2**128-1, got -1"),
    ("amount_out", (1, 2**128, 1, 0), "out_of_range",
     "reserve_out must be an int in 0..=2**128-1, got 340282366920938463463374607431768211456"),
    ("amount_in", (1, 5, -7, 0), "out_of_range",
     "amount_out must be an int in 0..=2**128-1, got -7"),
    ("amount_out", (1, 1, 1, 2**200), "out_of_range",
     f"fee must be an int in 0..=2**128-1, got {2**200}"),
    ("amount_out", (1, 1, 1, 1_000_000), "fee_out_of_range",
     "fee 1000000 is outside 0..=999999 (hundredths of a basis point: 3000 = 0.30 %)"),
    ("amount_in", (1, 1, 1, 2**64), "fee_out_of_range",
     f"fee {2**64} is outside 0..=999999 (hundredths of a basis point: 3000 = 0.30 %)"),
    ("amount_out", (0, 1, 1, 0), "zero_reserve",
     "pool has a zero reserve (reserve_in=0, reserve_out=1) and cannot quote"),
    ("amount_in", (1, 0, 0, 0), "zero_reserve",
     "pool has a zero reserve (reserve_in=1, reserve_out=0) and cannot quote"),
    ("amount_in", (10, 10, 10, 3000), "insufficient_liquidity",
     "amount_out 10 is not below reserve_out 10: the pool cannot pay it out"),
    ("amount_in", (M, M, M - 1, 0), "input_overflow",
     f"the input needed for amount_out {M - 1} against reserve_out {M} exceeds 2**128-1"),
    # the range of every argument is checked before the fee, the fee before the reserves
    ("amount_out", (0, 0, -1, 10**6), "out_of_range",
     "amount_in must be an int in 0..=2**128-1, got -1"),
    ("amount_in", (0, 0, 5, 10**6), "fee_out_of_range",
     "fee 1000000 is outside 0..=999999 (hundredths of a basis point: 3000 = 0.30 %)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args", "code", "message"), BAD_CALLS)
def test_bad_input_raises_pool_math_error(
    ops: ModuleType, name: str, args: tuple[Any, ...], code: str, message: str
) -> None:
    with pytest.raises(ops.PoolMathError) as info:
        getattr(ops, name)(*args)
    assert info.value.code == code
    assert str(info.value) == message
    assert isinstance(info.value, ops.RustOpsError)


@pytest.mark.parametrize("bad", [1.0, "1", None, b"1"])
def test_non_int_is_a_type_error(ops: ModuleType, bad: object) -> None:
    with pytest.raises(TypeError):
        ops.amount_out(1, 1, bad, 0)
    with pytest.raises(TypeError):
        ops.amount_in(bad, 1, 0, 0)


# Hypothesis: reserves and amounts from tiny to u128 extremes, fees across the whole range.
u128s = st.one_of(
    st.integers(0, 10),
    st.integers(0, 10**9),
    st.integers(0, 10**30),
    st.integers(2**128 - 2**70, M),
    st.integers(0, M),
)
fees = st.one_of(st.sampled_from([0, 1, 500, 3000, 10_000, 999_999]), st.integers(0, 999_999))
anything_int = st.one_of(u128s, st.integers(-(2**130), 2**130), st.integers(-5, 2 * 10**6))

Compare = Callable[[Callable[[ModuleType], Any]], tuple[Any, ...]]


@settings(max_examples=500, deadline=None)
@given(r_in=u128s, r_out=u128s, amount=u128s, fee=fees)
def test_rust_and_python_agree(
    compare: Compare, r_in: int, r_out: int, amount: int, fee: int
) -> None:
    compare(lambda m: m.amount_out(r_in, r_out, amount, fee))
    compare(lambda m: m.amount_in(r_in, r_out, amount, fee))


@settings(max_examples=300, deadline=None)
@given(r_in=anything_int, r_out=anything_int, amount=anything_int, fee=anything_int)
def test_rust_and_python_agree_on_bad_input(
    compare: Compare, r_in: int, r_out: int, amount: int, fee: int
) -> None:
    compare(lambda m: m.amount_out(r_in, r_out, amount, fee))
    compare(lambda m: m.amount_in(r_in, r_out, amount, fee))


@settings(max_examples=300, deadline=None)
@given(r_in=u128s.filter(bool), r_out=u128s.filter(bool), x=u128s, fee=fees)
def test_amount_in_is_the_least_sufficient_input(
    ops: ModuleType, r_in: int, r_out: int, x: int, fee: int
) -> None:
    y = ops.amount_out(r_in, r_out, x, fee)
    assert y < r_out
    need = ops.amount_in(r_in, r_out, y, fee)
    assert need <= x  # buying back what x bought never costs more than x
    assert ops.amount_out(r_in, r_out, need, fee) >= y
    if need:
        assert ops.amount_out(r_in, r_out, need - 1, fee) < y
