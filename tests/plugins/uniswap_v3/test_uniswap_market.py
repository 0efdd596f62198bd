"""The pool watcher reports changes made by anyone, and only the pools that changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from pipeline.devstack.chain import dev_account_key
from pipeline.devstack.uniswap import DevChain, connect
from pipeline.models.market import PoolState
from pipeline.plugins.manager import make_plugin_manager
from plugins.uniswap_v3 import POOLS_TOPIC, MarketSourceSpec, PoolWatcher, UniswapV3Venue

pytestmark = pytest.mark.slow


async def next_batch(updates: AsyncIterator[list[PoolState]]) -> list[PoolState]:
    return await asyncio.wait_for(anext(updates), timeout=10)


async def test_a_swap_by_another_account_is_reported(
    venue: UniswapV3Venue, make_venue: Any, make_step: Any, chain: DevChain
) -> None:
    watcher = PoolWatcher(venue, poll_interval_s=0.02)
    updates = watcher.updates()
    snapshot = await next_batch(updates)
    assert {s.pool_id for s in snapshot} == {p.pool_id for p in venue.deployment.pools}
    before = {s.pool_id: s for s in snapshot}

    # Another account (anvil dev account 4) wraps ETH and swaps; the watcher's venue is idle.
    w3 = connect(chain.rpc_url)
    other = w3.eth.accounts[4]
    weth = w3.eth.contract(
        address=w3.to_checksum_address(chain.deployment.weth),
        abi=[
            {
                "name": "deposit",
                "type": "function",
                "inputs": [],
                "outputs": [],
                "stateMutability": "payable",
            }
        ],
    )
    weth.functions.deposit().transact({"from": other, "value": 10 * 10**18})
    assert dev_account_key(4)  # the venue below signs for account 4 with its dev key
    trader = await make_venue("other", dev_account=4)
    assert trader.address == other
    await trader.wait_receipt(
        await trader.submit(make_step("s-other", "WETH>WETH-USDC-3000>USDC", "5")), 30
    )

    changed = await next_batch(updates)
    assert [s.pool_id for s in changed] == ["WETH-USDC-3000"]
    state = changed[0]
    old = before["WETH-USDC-3000"]
    assert state.sqrt_price_x96 is not None
    assert old.sqrt_price_x96 is not None
    assert state.sqrt_price_x96 < old.sqrt_price_x96  # WETH (token0) sold: its price fell
    assert state.block is not None
    assert old.block is not None
    assert state.block > old.block
    # What the watcher reports is what the venue reads at that block.
    (direct,) = await venue.reader.read(
        [venue.deployment.pool("WETH-USDC-3000")], block=state.block
    )
    assert direct == state
    watcher.close()
    with pytest.raises(StopAsyncIteration):
        await next_batch(updates)


async def test_blocks_without_pool_events_yield_nothing(
    venue: UniswapV3Venue, chain: DevChain
) -> None:
    watcher = PoolWatcher(venue, poll_interval_s=0.02, snapshot=False)
    updates = watcher.updates()
    pending = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0.1)
    w3 = connect(chain.rpc_url)
    w3.eth.send_transaction(
        {"from": w3.eth.accounts[5], "to": w3.eth.accounts[6], "value": 1}
    )  # a block, but no pool touched
    await asyncio.sleep(0.2)
    assert not pending.done()
    assert watcher.last_block == w3.eth.block_number
    watcher.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, timeout=5)


async def test_polls_reuse_the_nodes_connections(
    venue: UniswapV3Venue, chain: DevChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # web3's default session closes the connection after every call: each poll opened a new
    # one (~9/s per worker in the bench). Count the TCP connections the loop opens to the
    # node while the watcher polls and the venue reads every pool, again and again.
    port = urlsplit(chain.rpc_url).port
    loop = asyncio.get_running_loop()
    create_connection = loop.create_connection
    opened = 0

    async def counting_create_connection(*args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        transport, protocol = await create_connection(*args, **kwargs)
        if transport.get_extra_info("peername")[1] == port:
            opened += 1
        return transport, protocol

    await venue.reader.read()  # the first read also asks every pool's ticks, all at once
    monkeypatch.setattr(loop, "create_connection", counting_create_connection)
    watcher = PoolWatcher(venue, poll_interval_s=0.005, snapshot=False)
    pending = asyncio.ensure_future(anext(watcher.updates()))  # polls; no pool changes
    reads = 20
    for _ in range(reads):  # each: the head, then slot0 and liquidity of every pool at once
        await venue.reader.read()
        await asyncio.sleep(0.01)
    watcher.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, timeout=5)
    # Pooled, the connections never outnumber the calls in flight at once: a read's
    # slot0 and liquidity of every pool, and the watcher's poll.
    in_flight = 2 * len(venue.deployment.pools) + 1
    calls = reads * (1 + 2 * len(venue.deployment.pools))
    assert opened <= in_flight, f"{opened} new connections to the node for {calls}+ calls"


def test_the_plugin_registers_its_market_source() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    specs: list[object] = []
    pm.hook.sep_register_market_sources(register=specs.append)
    ours = [s for s in specs if isinstance(s, MarketSourceSpec) and s.venue == "uniswap_v3"]
    assert len(ours) == 1
    assert ours[0].topic == POOLS_TOPIC == "sep.market.pools"
    with pytest.raises(TypeError, match="UniswapV3Venue"):
        ours[0].factory(object())  # type: ignore[arg-type]
