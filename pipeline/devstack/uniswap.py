"""Deploy the real Uniswap V3 contracts onto a dev chain, seed them, and describe the result.

``ensure_deployment(rpc_url, path)`` is what the dev stack and the tests call: if ``path``
holds a deployment and the node has code at its addresses (a restarted anvil that loaded its
saved state), it is reused; otherwise everything is deployed afresh (~0.4 s) and written to
``path``:

    WETH9, test ERC20s USDC (6) / WBTC (8) / DAI (18), UniswapV3Factory (fee tier 100
    enabled), NonfungiblePositionManager (zero token descriptor), SwapRouter, QuoterV2,
    and the pools of ``uniswap_seed.POOLS`` with liquidity in several tick ranges.

The bytecode is the npm packages' (``chain_dist``), so the pools' init-code hash is the one
the router and the quoter compute. Transactions are sent from anvil's unlocked dev accounts
(``eth_sendTransaction``): the deployer holds no key. Account 0 provides the liquidity;
account 1 is the trader, funded with plenty of every token but with no allowances (the venue
grants its own).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, TxReceipt

from pipeline.devstack.chain import ChainService
from pipeline.devstack.chain_dist import test_erc20, uniswap_artifact
from pipeline.devstack.errors import DevStackError
from pipeline.devstack.ports import choose_port
from pipeline.devstack.uniswap_seed import (
    POOLS,
    TICK_SPACING,
    TOKENS,
    PoolSpec,
    deposit_amounts,
    sqrt_price_x96,
    tick_of,
    tick_range,
)

log = logging.getLogger(__name__)

Address = str

TRADER_FUNDS = {
    "WETH": Decimal(100_000),
    "USDC": Decimal(1_000_000_000),
    "WBTC": Decimal(10_000),
    "DAI": Decimal(1_000_000_000),
}
"""What the trader account holds after a fresh deployment (human units)."""
_LP_ETH = 10**9 * 10**18  # wei: enough ETH to wrap every pool's WETH side
_TRADER_ETH = 10**6 * 10**18


class TokenInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    symbol: str
    address: Address
    decimals: int


class PoolInfo(BaseModel):
    """One pool; ``token0``/``token1`` are symbols in the pool's own (address) order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pool_id: str
    address: Address
    token0: str
    token1: str
    fee: int
    tick_spacing: int


class Deployment(BaseModel):
    """Where everything is on the chain; written as JSON next to the node's state."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    chain_id: int
    factory: Address
    position_manager: Address
    router: Address
    quoter: Address
    weth: Address
    tokens: dict[str, TokenInfo]
    """By symbol, WETH included."""
    pools: tuple[PoolInfo, ...]
    trader: Address
    liquidity_provider: Address
    block: int
    """The block at which the deployment was complete."""

    def token(self, symbol: str) -> TokenInfo:
        try:
            return self.tokens[symbol]
        except KeyError:
            raise KeyError(
                f"no token {symbol!r} in the deployment; it has {sorted(self.tokens)}"
            ) from None

    def pool(self, pool_id: str) -> PoolInfo:
        for pool in self.pools:
            if pool.pool_id == pool_id:
                return pool
        raise KeyError(f"no pool {pool_id!r} in the deployment")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls.model_validate_json(path.read_text())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        partial.rename(path)  # atomic: readers see the old file or the whole new one


@dataclass(frozen=True)
class DevChain:
    """A node with Uniswap V3 on it, as the tests and benchmarks get it."""

    rpc_url: str
    deployment_path: Path
    deployment: Deployment


@contextmanager
def dev_chain(
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Iterator[DevChain]:
    """A node with Uniswap V3 for the block: ``SEP_RPC`` if set, else anvil in ``data_dir``.

    The deployment file is ``SEP_DEPLOYMENT`` if set, else ``<data_dir>/deployment.json``.
    An anvil started here is stopped at the end; an external node is left alone.
    """
    environ = os.environ if env is None else env
    path = Path(environ.get("SEP_DEPLOYMENT") or data_dir / "deployment.json").resolve()
    node: ChainService | None = None
    rpc_url = environ.get("SEP_RPC", "")
    try:
        if not rpc_url:
            node = ChainService(data_dir / "anvil", choose_port(port))
            node.start()
            with concurrent.futures.ThreadPoolExecutor(1) as pool:  # callers may run a loop
                pool.submit(asyncio.run, node.wait_healthy(60)).result()
            rpc_url = node.url
        yield DevChain(rpc_url, path, ensure_deployment(rpc_url, path, progress))
    finally:
        if node is not None:
            node.stop()


def connect(rpc_url: str) -> Web3:
    """A sync client without the validation middleware (it costs a chain-id call per call)."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    w3.middleware_onion.remove("validation")
    return w3


def is_deployed(w3: Web3, deployment: Deployment) -> bool:
    """True if the node is the deployment's chain and has code at every address in it."""
    if w3.eth.chain_id != deployment.chain_id:
        return False
    addresses = [
        deployment.factory,
        deployment.position_manager,
        deployment.router,
        deployment.quoter,
        deployment.weth,
        *(t.address for t in deployment.tokens.values()),
        *(p.address for p in deployment.pools),
    ]
    return all(len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0 for a in addresses)


def ensure_deployment(
    rpc_url: str, path: Path, progress: Callable[[str], None] | None = None
) -> Deployment:
    """The deployment in ``path`` if the node at ``rpc_url`` has it, else a fresh one."""
    say = progress or (lambda _line: None)
    w3 = connect(rpc_url)
    if path.is_file():
        try:
            existing = Deployment.load(path)
        except ValueError as exc:
            log.warning("ignoring unreadable deployment file %s: %s", path, exc)
        else:
            if is_deployed(w3, existing):
                say(f"chain: reusing the Uniswap V3 deployment in {path}")
                return existing
    started = time.monotonic()
    deployment = deploy(w3)
    deployment.save(path)
    say(f"chain: deployed and seeded Uniswap V3 in {time.monotonic() - started:.2f}s ({path})")
    return deployment


class _Deployer:
    """Sends from an unlocked dev account and checks every receipt."""

    def __init__(self, w3: Web3, sender: Address) -> None:
        self.w3 = w3
        self.sender = sender

    def receipt(self, tx_hash: HexBytes) -> TxReceipt:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)
        if receipt["status"] != 1:
            raise DevStackError(f"deployment transaction {tx_hash.hex()} reverted")
        return receipt

    def create(self, artifact: dict[str, Any], *args: Any) -> Contract:
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor(*args).transact({"from": self.sender, "gas": 12_000_000})
        address = self.receipt(tx)["contractAddress"]
        assert address is not None
        return self.w3.eth.contract(address=address, abi=artifact["abi"])

    def call(
        self, fn: Any, *, sender: Address | None = None, value: int = 0, gas: int = 2_000_000
    ) -> TxReceipt:
        # A fixed gas limit skips an eth_estimateGas round trip per transaction.
        tx = fn.transact({"from": sender or self.sender, "gas": gas, "value": value})
        return self.receipt(tx)


def deploy(w3: Web3) -> Deployment:
    """Deploy and seed everything (see the module docstring); returns where it all is."""
    accounts = w3.eth.accounts
    if len(accounts) < 2:
        raise DevStackError(
            "the node has fewer than two unlocked accounts; the Uniswap V3 "
            "deployer needs anvil's (or hardhat's) dev accounts"
        )
    lp, trader = accounts[0], accounts[1]
    # anvil's cheat code: the LP wraps more ETH than a dev account starts with.
    w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [lp, hex(_LP_ETH)])
    w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [trader, hex(_TRADER_ETH)])
    d = _Deployer(w3, lp)
    weth = d.create(uniswap_artifact("WETH9"))
    contracts: dict[str, Contract] = {"WETH": weth}
    decimals = {"WETH": 18}
    for spec in TOKENS:
        contracts[spec.symbol] = d.create(test_erc20(), spec.name, spec.symbol, spec.decimals)
        decimals[spec.symbol] = spec.decimals
    factory = d.create(uniswap_artifact("UniswapV3Factory"))
    d.call(factory.functions.enableFeeAmount(100, TICK_SPACING[100]))
    zero = "0x" + "00" * 20
    manager = d.create(
        uniswap_artifact("NonfungiblePositionManager"), factory.address, weth.address, zero
    )
    router = d.create(uniswap_artifact("SwapRouter"), factory.address, weth.address)
    quoter = d.create(uniswap_artifact("QuoterV2"), factory.address, weth.address)

    _fund(d, contracts, trader, manager.address)
    pools = tuple(_seed_pool(d, spec, contracts, decimals, factory, manager) for spec in POOLS)
    tokens = {
        s: TokenInfo(symbol=s, address=c.address, decimals=decimals[s])
        for s, c in contracts.items()
    }
    return Deployment(
        chain_id=w3.eth.chain_id,
        factory=factory.address,
        position_manager=manager.address,
        router=router.address,
        quoter=quoter.address,
        weth=weth.address,
        tokens=tokens,
        pools=pools,
        trader=trader,
        liquidity_provider=lp,
        block=w3.eth.block_number,
    )


def _fund(d: _Deployer, contracts: dict[str, Contract], trader: Address, manager: Address) -> None:
    """Wrap ETH and mint tokens for the LP and the trader; the LP approves the manager."""
    max_uint = 2**256 - 1
    d.call(contracts["WETH"].functions.deposit(), value=_LP_ETH // 2)
    d.call(
        contracts["WETH"].functions.deposit(),
        sender=trader,
        value=int(TRADER_FUNDS["WETH"].scaleb(18)),
    )
    for spec in TOKENS:
        token = contracts[spec.symbol].functions
        d.call(token.mint(d.sender, 10**15 * 10**spec.decimals))
        d.call(token.mint(trader, int(TRADER_FUNDS[spec.symbol].scaleb(spec.decimals))))
    for contract in contracts.values():
        d.call(contract.functions.approve(manager, max_uint))


def _seed_pool(
    d: _Deployer,
    spec: PoolSpec,
    contracts: dict[str, Contract],
    decimals: dict[str, int],
    factory: Contract,
    manager: Contract,
) -> PoolInfo:
    base, quote = contracts[spec.base], contracts[spec.quote]
    # The pool orders its tokens by address; the price is token1 per token0.
    if int(base.address, 16) < int(quote.address, 16):
        sym0, sym1, price = spec.base, spec.quote, spec.price
    else:
        sym0, sym1, price = spec.quote, spec.base, 1 / spec.price
    addr0, addr1 = contracts[sym0].address, contracts[sym1].address
    sqrt_price = sqrt_price_x96(price, decimals[sym0], decimals[sym1])
    d.call(
        manager.functions.createAndInitializePoolIfNecessary(addr0, addr1, spec.fee, sqrt_price),
        gas=6_000_000,
    )
    pool_address = factory.functions.getPool(addr0, addr1, spec.fee).call()
    spacing = TICK_SPACING[spec.fee]
    current = tick_of(sqrt_price)
    deadline = d.w3.eth.get_block("latest")["timestamp"] + 3600
    for rng in spec.ranges:
        lower, upper = tick_range(current, rng.half_width, spacing)
        amounts = deposit_amounts(spec, rng.value, decimals)
        params = (
            addr0,
            addr1,
            spec.fee,
            lower,
            upper,
            amounts[sym0],
            amounts[sym1],
            0,
            0,
            d.sender,
            deadline,
        )
        d.call(manager.functions.mint(params), gas=1_500_000)
    return PoolInfo(
        pool_id=spec.pool_id,
        address=pool_address,
        token0=sym0,
        token1=sym1,
        fee=spec.fee,
        tick_spacing=spacing,
    )
