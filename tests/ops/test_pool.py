"""Pool (``rust_ops/src/pool.rs``): fields, repr, equality, its errors, in both implementations."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from types import ModuleType
from typing import Any

import pytest

import pipeline.ops as rust_ops
from pipeline.ops import twin


def test_pool_fields_repr_equality(ops: ModuleType) -> None:
    p = ops.Pool("0xab", "uniswap_v3", "WETH", "USDC", 10**30, 2**100, 500)
    assert (p.pool_id, p.venue, p.token0, p.token1, p.reserve0, p.reserve1, p.fee) == (
        "0xab", "uniswap_v3", "WETH", "USDC", 10**30, 2**100, 500,
    )  # fmt: skip
    assert repr(p) == (
        "Pool(pool_id='0xab', venue='uniswap_v3', token0='WETH', token1='USDC', "
        f"reserve0={10**30}, reserve1={2**100}, fee=500)"
    )
    same = ops.Pool(
        pool_id="0xab", venue="uniswap_v3", token0="WETH", token1="USDC",
        reserve0=10**30, reserve1=2**100, fee=500,
    )  # fmt: skip
    assert p == same
    assert hash(p) == hash(same)
    assert p != ops.Pool("0xab", "uniswap_v3", "WETH", "USDC", 10**30, 2**100, 3000)
    with pytest.raises(AttributeError):
        p.fee = 1  # type: ignore[misc]


def test_rust_pool_is_immutable_like_the_twin() -> None:
    with pytest.raises(FrozenInstanceError):
        twin.Pool("p", "v", "A", "B", 1, 1, 0).fee = 1  # type: ignore[misc]


BAD_POOLS: list[tuple[tuple[Any, ...], str, str]] = [
    (("p", "v", "A", "A", 1, 1, 0), "same_token", "pool 'p': token0 and token1 are both 'A'"),
    (("p", "v", "A", "B", 1, 1, 10**6), "fee_out_of_range",
     "pool 'p': fee 1000000 is outside 0..=999999 (hundredths of a basis point: 3000 = 0.30 %)"),
    (("p", "v", "A", "B", -1, 1, 0), "out_of_range",
     "pool 'p': reserve0 must be an int in 0..=2**128-1, got -1"),
    (("p", "v", "A", "B", 1, 2**128, 0), "out_of_range",
     f"pool 'p': reserve1 must be an int in 0..=2**128-1, got {2**128}"),
    (("p", "v", "A", "A", 1, 1, -3000), "out_of_range",
     "pool 'p': fee must be an int in 0..=2**128-1, got -3000"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "code", "message"), BAD_POOLS)
def test_bad_pool_raises_invalid_pool_error(
    ops: ModuleType, args: tuple[Any, ...], code: str, message: str
) -> None:
    with pytest.raises(ops.InvalidPoolError) as info:
        ops.Pool(*args)
    assert (info.value.code, info.value.pool_id, str(info.value)) == (code, "p", message)


@pytest.mark.parametrize(
    "args",
    [(1, "v", "A", "B", 1, 1, 0), ("p", "v", "A", None, 1, 1, 0), ("p", "v", "A", "B", 1.5, 1, 0)],
)
def test_pool_type_errors(ops: ModuleType, args: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError):
        ops.Pool(*args)


def test_rust_rejects_twin_pools() -> None:
    with pytest.raises(TypeError):
        rust_ops.RouteGraph(1).update_pool(twin.Pool("p", "v", "A", "B", 1, 1, 0))
