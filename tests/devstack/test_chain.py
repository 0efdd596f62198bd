"""The dev chain: anvil from npm, the real Uniswap V3 deployment, reuse after a restart."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from web3 import Web3

from pipeline.devstack import DevStack
from pipeline.devstack.chain import DEV_CHAIN_ID, ChainService, dev_account_key, rpc_call
from pipeline.devstack.chain_dist import npm_home, uniswap_artifact
from pipeline.devstack.ports import free_port, port_is_free
from pipeline.devstack.uniswap import (
    TRADER_FUNDS,
    Deployment,
    DevChain,
    connect,
    ensure_deployment,
    is_deployed,
)
from pipeline.devstack.uniswap_seed import (
    POOLS,
    TICK_SPACING,
    sqrt_price_x96,
    tick_of,
    tick_range,
)

ERC20_BALANCE = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


def start(node: ChainService) -> None:
    node.start()
    asyncio.run(node.wait_healthy(60))


def human_price(sqrt_price: int, decimals0: int, decimals1: int) -> Decimal:
    """token1 per token0 in human units (test-side reference, independent of the deployer)."""
    return (Decimal(sqrt_price) ** 2 / Decimal(2**192)).scaleb(decimals0 - decimals1)


# -- pure helpers ------------------------------------------------------------------------


def test_sqrt_price_matches_the_price_it_encodes() -> None:
    sqrt_price = sqrt_price_x96(Decimal(3000), 18, 6)  # WETH (token0) in USDC
    assert abs(human_price(sqrt_price, 18, 6) - 3000) < Decimal("1e-9")
    # Price 3000e6 / 1e18 = 3e-9 in base units: tick = ln(3e-9) / ln(1.0001) = -196257.x
    assert tick_of(sqrt_price) == -196_257


def test_tick_ranges_sit_on_the_spacing_grid_around_the_price() -> None:
    lower, upper = tick_range(-194_567, 120, 60)
    assert (lower % 60, upper % 60) == (0, 0)
    assert lower <= -194_567 - 120
    assert upper >= -194_567 + 120
    assert upper - lower <= 2 * 120 + 2 * 60
    full = tick_range(-194_567, 0, 60)
    assert full == (-887_220, 887_220)


def test_npm_cache_honours_sep_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEP_CACHE", str(tmp_path))
    assert npm_home().parent == tmp_path / "npm"


def test_dev_key_is_the_trader_account() -> None:
    from eth_account import Account

    assert (
        Account.from_key(dev_account_key(0)).address != Account.from_key(dev_account_key(1)).address
    )


# -- a node of our own: deploy, stop, restart, reuse -----------------------------------------


def test_deployment_survives_a_restart_and_is_reused(service_dir: Path) -> None:
    node = ChainService(service_dir / "anvil", free_port())
    path = service_dir / "deployment.json"
    lines: list[str] = []
    try:
        start(node)
        first = ensure_deployment(node.url, path, lines.append)
        assert any("deployed and seeded" in line for line in lines)
        w3 = connect(node.url)
        assert w3.eth.chain_id == DEV_CHAIN_ID == first.chain_id
        # A change after the deployment, to see that the node keeps its state, not a replay.
        sent = w3.eth.send_transaction(
            {"from": first.trader, "to": first.liquidity_provider, "value": 12345}
        )
        height = w3.eth.block_number
        balance = w3.eth.get_balance(first.liquidity_provider)
        node.stop()
        assert node.state_file.is_file()
        assert port_is_free(node.port)

        lines.clear()
        start(node)
        second = ensure_deployment(node.url, path, lines.append)
        assert lines == [f"chain: reusing the Uniswap V3 deployment in {path}"], (
            lines,
            node.log_path.read_text()[-2000:],
        )
        assert second == first
        # The transfer is still there.  (Not "in the same block": anvil's saved state keeps
        # the accounts exactly but, now and then, the last block's transaction comes back
        # mined in a block one higher.)
        again = connect(node.url)
        receipt = again.eth.get_transaction_receipt(sent)
        assert receipt["status"] == 1
        assert receipt["blockNumber"] in (height, height + 1), node.log_path.read_text()[-2000:]
        assert again.eth.get_balance(first.liquidity_provider) == balance
    finally:
        node.stop()


def test_a_fresh_node_gets_a_fresh_deployment(service_dir: Path, chain: DevChain) -> None:
    # The session chain's file names addresses a brand-new node has no code at... unless the
    # addresses coincide (anvil is deterministic), so the check must look at code, not names.
    path = service_dir / "deployment.json"
    path.write_text(chain.deployment_path.read_text())
    node = ChainService(service_dir / "anvil", free_port())
    try:
        start(node)
        assert not is_deployed(connect(node.url), Deployment.load(path))
        lines: list[str] = []
        fresh = ensure_deployment(node.url, path, lines.append)
        assert any("deployed and seeded" in line for line in lines)
        assert is_deployed(connect(node.url), fresh)
        assert json.loads(path.read_text())["block"] == fresh.block
    finally:
        node.stop()


def test_a_killed_node_loses_no_more_than_the_state_interval(service_dir: Path) -> None:
    node = ChainService(service_dir / "anvil", free_port(), state_interval=1)
    try:
        start(node)
        deployment = ensure_deployment(node.url, service_dir / "d.json")
        time.sleep(2.5)  # two state dumps
        node.kill()
        start(node)
        assert is_deployed(connect(node.url), deployment)
    finally:
        node.stop()


# -- the session chain: what the deployment holds --------------------------------------------


def test_every_pool_is_priced_and_has_liquidity_in_several_ranges(chain: DevChain) -> None:
    w3 = connect(chain.rpc_url)
    dep = chain.deployment
    abi = uniswap_artifact("UniswapV3Pool")["abi"]
    specs = {spec.pool_id: spec for spec in POOLS}
    assert {p.pool_id for p in dep.pools} == set(specs)
    for info in dep.pools:
        spec = specs[info.pool_id]
        pool = w3.eth.contract(address=Web3.to_checksum_address(info.address), abi=abi)
        assert pool.functions.fee().call() == info.fee == spec.fee
        assert pool.functions.tickSpacing().call() == TICK_SPACING[spec.fee]
        token0 = pool.functions.token0().call()
        assert token0 == dep.token(info.token0).address
        sqrt_price = pool.functions.slot0().call()[0]
        price = human_price(
            sqrt_price, dep.token(info.token0).decimals, dep.token(info.token1).decimals
        )
        base_per_quote = info.token0 == spec.quote
        expected = 1 / spec.price if base_per_quote else spec.price
        # Other tests trade on the session chain; they move prices by far less than 5 %.
        assert abs(price / expected - 1) < Decimal("0.05"), info.pool_id
        assert pool.functions.liquidity().call() > 0
        current = tick_of(
            sqrt_price_x96(
                spec.price if not base_per_quote else 1 / spec.price,
                dep.token(info.token0).decimals,
                dep.token(info.token1).decimals,
            )
        )
        for rng in spec.ranges:
            lower, _upper = tick_range(current, rng.half_width, info.tick_spacing)
            gross = pool.functions.ticks(lower).call()[0]
            assert gross > 0, f"{info.pool_id}: tick {lower} holds no liquidity"


def test_the_trader_is_funded(chain: DevChain) -> None:
    w3 = connect(chain.rpc_url)
    dep = chain.deployment
    for symbol, amount in TRADER_FUNDS.items():
        token = w3.eth.contract(
            address=Web3.to_checksum_address(dep.token(symbol).address), abi=ERC20_BALANCE
        )
        held = Decimal(token.functions.balanceOf(dep.trader).call()).scaleb(
            -dep.token(symbol).decimals
        )
        # Other tests trade from this account; they spend a small fraction of it.
        assert held > amount / 2, symbol
    assert rpc_call(chain.rpc_url, "eth_chainId") == hex(dep.chain_id)


# -- the stack -------------------------------------------------------------------------------


def test_devstack_runs_the_chain_when_asked(
    services: DevStack, chain: DevChain, tmp_path: Path, service_dir: Path
) -> None:
    env = {
        "SEP_KAFKA": services.kafka_bootstrap,
        "SEP_POSTGRES": services.postgres_dsn,
        "SEP_REDIS": services.redis_url,
    }
    with DevStack(tmp_path / "plain", env=env, progress=None) as plain:
        assert plain.embedded == []  # no chain unless asked for

    lines: list[str] = []
    with DevStack(service_dir, env=env, progress=lines.append, chain=True) as stack:
        assert stack.chain is not None
        assert [s.name for s in stack.embedded] == ["chain"]
        port = stack.chain.port
        assert stack.rpc_url == f"http://127.0.0.1:{port}"
        assert stack.deployment_path == service_dir / "chain" / "deployment.json"
        assert is_deployed(connect(stack.rpc_url), Deployment.load(stack.deployment_path))
    assert "chain: stopped" in lines
    assert port_is_free(port)

    # SEP_RPC: the stack uses that node, starts none, and reuses the deployment it has.
    external = env | {"SEP_RPC": chain.rpc_url, "SEP_DEPLOYMENT": str(chain.deployment_path)}
    lines.clear()
    with DevStack(tmp_path / "ext", env=external, progress=lines.append, chain=True) as stack:
        assert stack.embedded == []
        assert stack.rpc_url == chain.rpc_url
    assert f"chain: using {chain.rpc_url} (from SEP_RPC)" in lines
    assert f"chain: reusing the Uniswap V3 deployment in {chain.deployment_path}" in lines
