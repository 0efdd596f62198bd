"""Route math of the sim venue, checked against the constant-product formula written out here."""

from __future__ import annotations

import pytest

from plugins.sim_venue.amm import (
    Hop,
    Pool,
    SwapError,
    check_route,
    swap_exact_in,
    swap_exact_out,
)

E18 = 10**18
POOLS = {
    "weth-usdc": Pool("weth-usdc", "WETH", "USDC", 1_000 * E18, 3_000_000 * 10**6, 3000),
    "dai-usdc": Pool("dai-usdc", "DAI", "USDC", 5_000_000 * E18, 5_000_000 * 10**6, 100),
}
WETH_TO_DAI = (Hop("weth-usdc", "WETH", "USDC"), Hop("dai-usdc", "USDC", "DAI"))


def reference_out(reserve_in: int, reserve_out: int, amount: int, fee: int) -> int:
    """out = floor(in*(1e6-fee)*R_out / (R_in*1e6 + in*(1e6-fee)))."""
    g = 1_000_000 - fee
    return amount * g * reserve_out // (reserve_in * 1_000_000 + amount * g)


def k(pool: Pool) -> int:
    return pool.reserve0 * pool.reserve1


def test_exact_in_two_hops_follows_the_formula_and_moves_the_reserves() -> None:
    swap = swap_exact_in(POOLS, WETH_TO_DAI, 2 * E18)
    usdc = reference_out(1_000 * E18, 3_000_000 * 10**6, 2 * E18, 3000)
    dai = reference_out(5_000_000 * 10**6, 5_000_000 * E18, usdc, 100)
    assert (swap.amount_in, swap.amount_out) == (2 * E18, dai)
    weth_usdc, dai_usdc = swap.pools["weth-usdc"], swap.pools["dai-usdc"]
    # The whole input (fee included) enters the pool; what left is exactly what was paid out.
    assert (weth_usdc.reserve0, weth_usdc.reserve1) == (1_002 * E18, 3_000_000 * 10**6 - usdc)
    assert (dai_usdc.reserve0, dai_usdc.reserve1) == (
        5_000_000 * E18 - dai,
        5_000_000 * 10**6 + usdc,
    )
    assert k(weth_usdc) > k(POOLS["weth-usdc"])
    assert k(dai_usdc) > k(POOLS["dai-usdc"])
    assert POOLS["weth-usdc"].reserve0 == 1_000 * E18  # the snapshot itself is untouched


@pytest.mark.parametrize("wanted", [1, 999_999, 5_000 * E18, 123_456_789 * E18 // 1000])
def test_exact_out_pays_the_least_input_that_yields_the_output(wanted: int) -> None:
    swap = swap_exact_out(POOLS, WETH_TO_DAI, wanted)
    assert swap.amount_out == wanted
    assert _bought(swap.amount_in) >= wanted
    assert _bought(swap.amount_in - 1) < wanted
    for pool_id, after in swap.pools.items():
        assert k(after) >= k(POOLS[pool_id])


def _bought(amount: int) -> int:
    """What ``amount`` WETH buys along WETH_TO_DAI (0 where the venue refuses dust)."""
    if amount <= 0:
        return 0
    try:
        return swap_exact_in(POOLS, WETH_TO_DAI, amount).amount_out
    except SwapError as exc:
        if exc.reason != "insufficient_output":
            raise
        return 0


def test_exact_out_of_the_whole_reserve_is_insufficient_liquidity() -> None:
    hops = (Hop("weth-usdc", "USDC", "WETH"),)
    with pytest.raises(SwapError) as caught:
        swap_exact_out(POOLS, hops, 1_000 * E18)
    assert caught.value.reason == "insufficient_liquidity"


def test_dust_that_buys_nothing_is_refused_not_swallowed() -> None:
    with pytest.raises(SwapError) as caught:
        swap_exact_in(POOLS, (Hop("weth-usdc", "USDC", "WETH"),), 0)
    assert caught.value.reason == "zero_amount"
    # 1 base unit of WETH is worth far less than 1 base unit of USDC.
    with pytest.raises(SwapError) as caught:
        swap_exact_in(POOLS, (Hop("weth-usdc", "WETH", "USDC"),), 1)
    assert caught.value.reason == "insufficient_output"


@pytest.mark.parametrize(
    ("hops", "token_in", "token_out", "reason", "needle"),
    [
        ((Hop("nope", "WETH", "USDC"),), "WETH", "USDC", "unknown_pool", "no pool 'nope'"),
        ((), "WETH", "USDC", "bad_route", "no legs"),
        ((Hop("weth-usdc", "WETH", "USDC"),), "DAI", "USDC", "bad_route", "expected DAI"),
        ((Hop("weth-usdc", "WETH", "USDC"),), "WETH", "DAI", "bad_route", "ends in USDC"),
        ((Hop("weth-usdc", "WETH", "DAI"),), "WETH", "DAI", "bad_route", "trades WETH/USDC"),
        (
            (Hop("weth-usdc", "WETH", "USDC"), Hop("weth-usdc", "USDC", "WETH")),
            "WETH",
            "WETH",
            "bad_route",
            "used twice",
        ),
    ],
)
def test_check_route_names_what_is_wrong(
    hops: tuple[Hop, ...], token_in: str, token_out: str, reason: str, needle: str
) -> None:
    with pytest.raises(SwapError) as caught:
        check_route(POOLS, hops, token_in, token_out)
    assert caught.value.reason == reason
    assert needle in caught.value.detail


def test_check_route_accepts_a_connected_route() -> None:
    check_route(POOLS, WETH_TO_DAI, "WETH", "DAI")


def test_amounts_beyond_128_bits_are_refused_with_a_reason() -> None:
    # The Rust operators work in u128; their PoolMathError becomes a SwapError.
    with pytest.raises(SwapError) as caught:
        swap_exact_in(POOLS, WETH_TO_DAI, 2**130)
    assert caught.value.reason == "out_of_range"
    assert "2**128" in caught.value.detail
