"""The uniswap_v3 venue against the real contracts on anvil: pools, quotes, swaps, reverts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD

from pipeline.devstack.chain import rpc_call
from pipeline.devstack.chain_dist import uniswap_artifact
from pipeline.devstack.uniswap import DevChain, connect
from pipeline.devstack.uniswap_seed import tick_of
from pipeline.models.plan import SwapMode
from pipeline.plugins.venue import StepRejected, TransientVenueError
from plugins.uniswap_v3 import UniswapV3Venue

pytestmark = pytest.mark.slow

SINGLE = "WETH>WETH-USDC-500>USDC"
MULTI = "WBTC>WBTC-WETH-3000>WETH>WETH-USDC-500>USDC"


def swap_events(chain: DevChain, tx_hash: str) -> dict[str, tuple[int, int]]:
    """pool address -> (amount0, amount1) decoded with the pool's own ABI (test-side)."""
    w3 = connect(chain.rpc_url)
    receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    pool = w3.eth.contract(abi=uniswap_artifact("UniswapV3Pool")["abi"])
    events = pool.events.Swap().process_receipt(receipt, errors=DISCARD)  # ERC20 logs too
    return {e["address"]: (e["args"]["amount0"], e["args"]["amount1"]) for e in events}


def delta(before: dict[str, Decimal], after: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: after[k] - before[k] for k in before if k != "ETH" and after[k] != before[k]}


async def test_pools_report_the_v3_state_consistently(venue: UniswapV3Venue) -> None:
    states = await venue.pools()
    assert {s.pool_id for s in states} == {p.pool_id for p in venue.deployment.pools}
    for s in states:
        assert s.kind == "concentrated"
        assert s.chain_id == venue.deployment.chain_id
        assert s.sqrt_price_x96
        assert s.liquidity
        assert s.ticks
        assert s.tick_spacing
        assert s.tick is not None
        assert abs(tick_of(s.sqrt_price_x96) - s.tick) <= 1  # float log in tick_of
        ticks = [t.tick for t in s.ticks]
        assert ticks == sorted(ticks)
        assert all(t % s.tick_spacing == 0 for t in ticks)
        # Every position adds L at its lower tick and removes it at its upper one, so the
        # nets sum to zero, and the active liquidity is the sum of nets at or below the price.
        assert sum(t.liquidity_net for t in s.ticks) == 0
        assert s.liquidity == sum(t.liquidity_net for t in s.ticks if t.tick <= s.tick)
        # Virtual reserves price the pool like the sqrt price does.
        spot = Decimal(s.sqrt_price_x96) ** 2 / Decimal(2**192)
        assert abs(Decimal(s.reserve1) / Decimal(s.reserve0) / spot - 1) < Decimal("1e-9")


async def test_exact_in_single_hop_fill_matches_quote_event_and_balances(
    venue: UniswapV3Venue, chain: DevChain, make_step: Any
) -> None:
    quote = await venue.quote(make_step("q", SINGLE, "2"))
    assert Decimal(5900) < quote < Decimal(6000)  # 2 WETH at ~3000, fee 0.05 %, tiny impact
    before = await venue.balances()
    sub = await venue.submit(make_step("s-in-1", SINGLE, "2", limit=str(quote)))
    fill = await venue.wait_receipt(sub, 30)
    after = await venue.balances()
    assert (fill.amount_in, fill.amount_out) == (Decimal(2), quote)
    assert delta(before, after) == {"WETH": -fill.amount_in, "USDC": fill.amount_out}
    pool = venue.deployment.pool("WETH-USDC-500")  # token0 WETH, token1 USDC
    amount0, amount1 = swap_events(chain, sub.order_ref)[pool.address]
    assert (Decimal(amount0).scaleb(-18), Decimal(-amount1).scaleb(-6)) == (
        fill.amount_in,
        fill.amount_out,
    )
    assert after["ETH"] < before["ETH"]  # gas was paid
    # It landed in its receipt's block: pool states read there or later include it.
    receipt = connect(chain.rpc_url).eth.get_transaction_receipt(sub.order_ref)  # type: ignore[arg-type]
    assert fill.landed_at == receipt["blockNumber"]


async def test_exact_in_multi_hop(venue: UniswapV3Venue, chain: DevChain, make_step: Any) -> None:
    route = make_step("q", MULTI, "0.25")
    quote = await venue.quote(route)
    before = await venue.balances()
    sub = await venue.submit(make_step("s-in-2", MULTI, "0.25", limit=str(quote)))
    fill = await venue.wait_receipt(sub, 30)
    after = await venue.balances()
    assert fill.amount_out == quote
    assert delta(before, after) == {"WBTC": Decimal("-0.25"), "USDC": fill.amount_out}
    events = swap_events(chain, sub.order_ref)
    assert len(events) == 2  # one Swap per hop
    usdc_pool = venue.deployment.pool("WETH-USDC-500")
    assert Decimal(-events[usdc_pool.address][1]).scaleb(-6) == fill.amount_out


@pytest.mark.parametrize(
    ("route", "amount", "spent"),
    [
        ("USDC>DAI-USDC-100>DAI", "2500", "USDC"),
        ("USDC>WETH-USDC-3000>WETH>WBTC-WETH-3000>WBTC", "0.05", "USDC"),
    ],
)
async def test_exact_out_receives_exactly_and_pays_the_quote(
    venue: UniswapV3Venue, make_step: Any, route: str, amount: str, spent: str
) -> None:
    wanted = make_step("q", route, amount, mode=SwapMode.EXACT_OUT)
    cost = await venue.quote(wanted)
    before = await venue.balances()
    step = make_step(f"s-out-{route}", route, amount, mode=SwapMode.EXACT_OUT, limit=str(cost))
    fill = await venue.wait_receipt(await venue.submit(step), 30)
    after = await venue.balances()
    received = route.split(">")[-1]
    assert fill.amount_out == Decimal(amount)
    assert fill.amount_in == cost
    assert delta(before, after) == {spent: -cost, received: Decimal(amount)}


async def test_a_swap_that_would_revert_is_refused_before_sending(
    venue: UniswapV3Venue, make_step: Any
) -> None:
    quote = await venue.quote(make_step("q", SINGLE, "1"))
    nonce = venue.w3.eth
    sent_before = await nonce.get_transaction_count(venue.address)
    with pytest.raises(StepRejected, match="Too little received") as info:
        await venue.submit(make_step("s-greedy", SINGLE, "1", limit=str(quote * 2)))
    assert info.value.reason == "slippage"
    assert await nonce.get_transaction_count(venue.address) == sent_before
    assert await venue.lookup("s-greedy") is None


@pytest.mark.parametrize(
    ("mode", "limit", "message", "reason"),
    [
        (SwapMode.EXACT_IN, "999999", "Too little received", "slippage"),
        (SwapMode.EXACT_OUT, "0.0001", "Too much requested", "slippage"),  # 1 USDC ~ 0.00033 WETH
    ],
)
async def test_a_mined_revert_is_rejected_with_its_reason_and_moves_nothing(
    make_venue: Any, make_step: Any, mode: SwapMode, limit: str, message: str, reason: str
) -> None:
    # A fixed gas limit skips the estimate, so the swap reaches the chain and reverts there.
    venue = await make_venue(gas_limit=400_000)
    step = make_step(f"s-revert-{mode}", SINGLE, "1", mode=mode, limit=limit)
    before = await venue.balances()
    submission = await venue.submit(step)
    with pytest.raises(StepRejected, match=message) as info:
        await venue.wait_receipt(submission, 30)
    assert info.value.reason == reason
    after = await venue.balances()
    assert delta(before, after) == {}
    assert after["ETH"] < before["ETH"]  # the failed transaction still paid gas
    receipt = await venue.w3.eth.get_transaction_receipt(submission.order_ref)  # type: ignore[arg-type]
    assert receipt["status"] == 0


async def test_an_expired_deadline_reverts_as_too_old(
    make_venue: Any, make_step: Any, chain: DevChain
) -> None:
    venue = await make_venue(gas_limit=400_000, deadline_s=10)
    latest = connect(chain.rpc_url).eth.get_block("latest")["timestamp"]
    # The next block is mined an hour later than the deadline the venue computes now.
    rpc_call(chain.rpc_url, "evm_setNextBlockTimestamp", [latest + 3600])
    submission = await venue.submit(make_step("s-late", SINGLE, "0.1"))
    with pytest.raises(StepRejected, match="Transaction too old") as info:
        await venue.wait_receipt(submission, 30)
    assert info.value.reason == "expired"


async def test_an_unfunded_account_is_refused_with_stf(make_venue: Any, make_step: Any) -> None:
    poor = await make_venue("poor", dev_account=7)  # ETH for gas, no tokens
    assert (await poor.balances())["USDC"] == 0
    with pytest.raises(StepRejected, match="STF") as info:
        await poor.submit(make_step("s-poor", "USDC>DAI-USDC-100>DAI", "10"))
    assert info.value.reason == "transfer_failed"


async def test_steps_that_do_not_fit_are_rejected_without_io(
    venue: UniswapV3Venue, make_step: Any
) -> None:
    with pytest.raises(StepRejected, match="no pool 'NOPE'"):
        await venue.quote(make_step("x", "WETH>NOPE>USDC", "1"))
    with pytest.raises(StepRejected, match="trades WETH/USDC"):
        await venue.submit(make_step("x", "WBTC>WETH-USDC-500>USDC", "1"))
    with pytest.raises(StepRejected, match="no token 'PEPE'"):
        await venue.submit(make_step("x", "PEPE>WETH-USDC-500>USDC", "1"))


async def test_a_node_that_is_down_is_a_transient_error(
    venue: UniswapV3Venue, make_step: Any
) -> None:
    submission = await venue.submit(make_step("s-before-outage", SINGLE, "0.01"))
    await venue.wait_receipt(submission, 30)
    from web3 import AsyncHTTPProvider

    from pipeline.devstack.ports import free_port

    # Point the venue's client at a port nobody listens on: the node is "down".
    provider = venue.w3.provider
    assert isinstance(provider, AsyncHTTPProvider)
    original = provider.endpoint_uri
    provider.endpoint_uri = f"http://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(TransientVenueError) as info:
            await venue.quote(make_step("q", SINGLE, "1"))
        assert info.value.reason == "rpc_unavailable"
        with pytest.raises(TransientVenueError):
            await venue.wait_receipt(submission, 5)
        with pytest.raises(TransientVenueError):
            await venue.balances()
    finally:
        provider.endpoint_uri = original
    assert (await venue.wait_receipt(submission, 5)).amount_in == Decimal("0.01")


def test_checksums(chain: DevChain) -> None:
    assert Web3.is_checksum_address(chain.deployment.router)
