"""The Rust V3 quote equals QuoterV2's to the wei, on the real contracts.

Session ``chain``: anvil with the real Uniswap V3 contracts and five seeded pools, each with
three nested liquidity ranges. The pools are read through the ``uniswap_v3`` venue (slot0,
liquidity and every initialised tick, pinned to one block), turned into ``V3Pool``s, and
quoted for seeded-random swaps in every pool, both directions, exact input and exact output,
from dust to several times the active range's depth (so swaps cross one, two or all of the
initialised ticks, and some drain the pool). QuoterV2 is called at the very block the pools
were read at, so swaps by other tests on the shared chain cannot interfere. Multi-hop quotes
chain the pools (exact input forwards, exact output backwards) and are compared with
``quoteExactInput`` / ``quoteExactOutput`` on the encoded path.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3.exceptions import ContractLogicError

import pipeline.ops as ops
from pipeline.devstack.uniswap import DevChain, connect
from pipeline.models.market import PoolState
from pipeline.ops.v3 import v3_pool, zero_for_one
from pipeline.plugins.venue import VenueContext
from plugins.uniswap_v3 import UniswapV3Config, UniswapV3Venue
from plugins.uniswap_v3.contracts import abi, encode_path

pytestmark = pytest.mark.slow

SEED = 20240611
CASES_PER_POOL_SIDE = 8  # per pool, direction and mode: 5 * 2 * 2 * 8 = 160 single-hop quotes
PATHS = (  # token, pool, token, pool, token
    ("WBTC", "WBTC-WETH-3000", "WETH", "WETH-USDC-500", "USDC"),
    ("USDC", "WETH-USDC-3000", "WETH", "WBTC-WETH-3000", "WBTC"),
    ("DAI", "DAI-USDC-100", "USDC", "WETH-USDC-500", "WETH"),
    ("WETH", "WETH-USDC-3000", "USDC", "DAI-USDC-100", "DAI"),
    ("WBTC", "WBTC-USDC-3000", "USDC", "WETH-USDC-500", "WETH"),
)


@dataclass
class Market:
    states: dict[str, PoolState]
    pools: dict[str, ops.V3Pool]
    block: int
    quoter: Any
    addresses: dict[str, str]


@pytest.fixture(scope="module")
async def market(chain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Market:
    config = UniswapV3Config(rpc_url=chain.rpc_url, deployment_file=chain.deployment_path)
    venue = UniswapV3Venue(config, VenueContext(Path(tmp_path_factory.mktemp("v3q")), {}))
    await venue.start()
    try:
        states = {s.pool_id: s for s in await venue.pools()}
    finally:
        await venue.stop()
    blocks = {s.block for s in states.values()}
    assert len(blocks) == 1
    (block,) = blocks
    assert block is not None
    w3 = connect(chain.rpc_url)
    quoter = w3.eth.contract(
        address=w3.to_checksum_address(chain.deployment.quoter), abi=abi("QuoterV2")
    )
    addresses = {s: w3.to_checksum_address(t.address) for s, t in chain.deployment.tokens.items()}
    return Market(states, {p: v3_pool(s) for p, s in states.items()}, block, quoter, addresses)


def quote(market: Market, fn: str, *args: Any) -> tuple[int, ...] | None:
    """QuoterV2 at the pools' block: its result tuple, or None if it reverts."""
    try:
        result = market.quoter.get_function_by_name(fn)(*args).call(block_identifier=market.block)
    except ContractLogicError:
        return None
    return tuple(result)


def log_uniform(rng: random.Random, low: float, high: float) -> int:
    return max(1, int(math.exp(rng.uniform(math.log(low), math.log(high)))))


def test_all_pools_have_their_ticks(market: Market) -> None:
    assert set(market.pools) == {
        "WETH-USDC-500",
        "WETH-USDC-3000",
        "WBTC-WETH-3000",
        "DAI-USDC-100",
        "WBTC-USDC-3000",
    }
    for pool in market.pools.values():
        assert pool.ticks is not None
        assert len(pool.ticks) >= 5  # three nested ranges: six bounds (full range: clamped)


def check(market: Market, pool_id: str, token_in: str, exact_in: bool, amount: int) -> Any:
    """One single-pool quote, ours against QuoterV2's; returns our swap result.

    A swap the pool cannot fill walks to the price bound, which in the pools without a
    full-range position means thousands of empty bitmap words: more gas than an ``eth_call``
    gets. Such swaps are quoted on both sides with a price limit 20,000 ticks away instead
    (the partial fill the pool would execute).
    """
    state, pool = market.states[pool_id], market.pools[pool_id]
    zfo = zero_for_one(state, token_in)
    token_out = state.token1 if zfo else state.token0
    swap = pool.swap_exact_in if exact_in else pool.swap_exact_out
    ours = swap(zfo, amount)
    limit = 0
    if (ours.amount_in_used if exact_in else ours.amount_out) < amount:
        assert state.tick is not None
        far = state.tick - 20_000 if zfo else state.tick + 20_000
        limit = ops.sqrt_ratio_at_tick(min(max(far, ops.MIN_TICK + 1), ops.MAX_TICK - 1))
        ours = swap(zfo, amount, limit)
    fn = "quoteExactInputSingle" if exact_in else "quoteExactOutputSingle"
    theirs = quote(
        market,
        fn,
        (market.addresses[token_in], market.addresses[token_out], amount, state.fee, limit),
    )
    assert theirs is not None, (pool_id, token_in, exact_in, amount)
    mine = ours.amount_out if exact_in else ours.amount_in_used
    assert (mine, ours.sqrt_price_after) == theirs[:2], (pool_id, token_in, exact_in, amount)
    if limit == 0:  # the convenience functions agree too
        if exact_in:
            assert ops.v3_amount_out(pool, zfo, amount) == theirs[0]
        else:
            assert ops.v3_amount_in(pool, zfo, amount) == theirs[0]
    return ours, limit != 0


@pytest.mark.parametrize(
    "pool_id",
    ["WETH-USDC-500", "WETH-USDC-3000", "WBTC-WETH-3000", "DAI-USDC-100", "WBTC-USDC-3000"],
)
def test_single_pool_quotes_match_quoter_v2(market: Market, pool_id: str) -> None:
    state = market.states[pool_id]
    rng = random.Random(f"{SEED}-{pool_id}")
    crossed = limited = 0
    for token_in in (state.token0, state.token1):
        zfo = zero_for_one(state, token_in)
        # Depth of the active range in each token (the virtual reserves).
        depth_in = state.reserve0 if zfo else state.reserve1
        depth_out = state.reserve1 if zfo else state.reserve0
        for exact_in, depth, top in ((True, depth_in, 3.0), (False, depth_out, 1.5)):
            for _ in range(CASES_PER_POOL_SIDE):
                amount = log_uniform(rng, depth * 1e-7, depth * top)
                ours, was_limited = check(market, pool_id, token_in, exact_in, amount)
                crossed += ours.ticks_crossed > 0
                limited += was_limited
    # The amounts reach past the narrow range in every pool, both ways.
    assert crossed >= 6, (pool_id, crossed)
    print(
        f"{pool_id}: {4 * CASES_PER_POOL_SIDE} quotes equal to the wei, {crossed} crossed "
        f"ticks, {limited} beyond the pool's liquidity (with a price limit)"
    )


def hops(path: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [(path[i], path[i + 1], path[i + 2]) for i in range(0, len(path) - 2, 2)]


def capacity(market: Market, pool_id: str, token_in: str) -> tuple[int, int]:
    """(input that drains the pool, output it pays then): its real depth in this direction."""
    state = market.states[pool_id]
    drained = market.pools[pool_id].swap_exact_in(zero_for_one(state, token_in), 2**200)
    return drained.amount_in_used, drained.amount_out


def chain_quote(
    market: Market, legs: list[tuple[str, str, str]], exact_in: bool, amount: int
) -> tuple[int, int] | None:
    """Our multi-hop quote (and the ticks crossed), or None if a pool cannot fill its leg."""
    value, ticks = amount, 0
    for token_in, pool_id, _ in legs if exact_in else legs[::-1]:
        pool, zfo = market.pools[pool_id], zero_for_one(market.states[pool_id], token_in)
        r = pool.swap_exact_in(zfo, value) if exact_in else pool.swap_exact_out(zfo, value)
        if (r.amount_in_used if exact_in else r.amount_out) < value:
            return None
        value = r.amount_out if exact_in else r.amount_in_used
        ticks += r.ticks_crossed
    return value, ticks


@pytest.mark.parametrize("path", PATHS, ids=lambda p: ">".join(p[::2]))
def test_multi_hop_quotes_match_quoter_v2(market: Market, path: tuple[str, ...]) -> None:
    rng = random.Random(f"{SEED}-{'>'.join(path)}")
    legs = hops(path)
    tokens = [market.addresses[t] for t in path[::2]]
    fees = [market.states[p].fee for _, p, _ in legs]
    top_in = capacity(market, legs[0][1], legs[0][0])[0]
    top_out = capacity(market, legs[-1][1], legs[-1][0])[1]
    crossed = unfillable = 0
    for exact_in, top in ((True, top_in), (False, top_out)):
        for _ in range(6):
            amount = log_uniform(rng, top * 1e-7, top * 0.6)
            ours = chain_quote(market, legs, exact_in, amount)
            if exact_in:
                # Each pool's output is the next pool's input.
                theirs = quote(market, "quoteExactInput", encode_path(tokens, fees), amount)
            else:
                # Backwards: each pool's input is what the pool before it must pay out.
                theirs = quote(
                    market, "quoteExactOutput", encode_path(tokens[::-1], fees[::-1]), amount
                )
            if ours is None:  # a pool on the way cannot fill it: QuoterV2 cannot quote it
                assert theirs is None, (path, exact_in, amount)
                unfillable += 1
                continue
            assert theirs is not None, (path, exact_in, amount)
            assert ours[0] == theirs[0], (path, exact_in, amount)
            crossed += ours[1] > 0
    assert crossed >= 1, path
    print(
        f"{'>'.join(path[::2])}: 12 multi-hop quotes, {12 - unfillable} equal to the wei "
        f"({crossed} crossing ticks), {unfillable} unfillable on both sides"
    )
