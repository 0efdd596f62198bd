"""A market participant on the dev chain: an account that swaps the Uniswap V3 WETH/USDC pools
to a price through the SwapRouter, as any trader does (the risk and paper e2e tests).

Each push moves *every* WETH/USDC pool to the same price in one block (an arbitrageur keeps
them aligned), with ``sqrtPriceLimitX96`` so the price lands exactly where the test wants
it; ``restore`` puts them back where they started (the chain is shared by the session).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, Wei

from pipeline.devstack.chain import rpc_call
from pipeline.devstack.uniswap import DevChain, PoolInfo
from pipeline.devstack.uniswap_seed import sqrt_price_x96
from plugins.uniswap_v3.contracts import ERC20_ABI, abi

WHALE_ACCOUNT = 9  # one no other test uses (the uniswap venue tests keep 7 unfunded)
Q96 = 2**96
MINT_ABI: list[dict[str, Any]] = [
    {
        "name": "mint",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [],
    },
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "v", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]
WETH_DEPOSIT_ABI: list[dict[str, Any]] = [
    {
        "name": "deposit",
        "type": "function",
        "stateMutability": "payable",
        "inputs": [],
        "outputs": [],
    }
]


@dataclass
class Pool:
    info: PoolInfo
    contract: Contract
    weth_is_token0: bool
    start: int
    """sqrtPriceX96 before the test (restored after it)."""


class Whale:
    """An account that trades on the WETH/USDC pools directly, to a price."""

    def __init__(self, w3: Web3, chain: DevChain) -> None:
        self.w3, self.chain = w3, chain
        self.address = w3.eth.accounts[WHALE_ACCOUNT]
        deployment = chain.deployment
        self.weth = deployment.token("WETH").address
        self.usdc = deployment.token("USDC").address
        self.router = w3.eth.contract(
            address=Web3.to_checksum_address(deployment.router), abi=abi("SwapRouter")
        )
        self.pools: list[Pool] = []
        for info in deployment.pools:
            if {info.token0, info.token1} != {"WETH", "USDC"}:
                continue
            contract = w3.eth.contract(
                address=Web3.to_checksum_address(info.address), abi=abi("UniswapV3Pool")
            )
            start = int(contract.functions.slot0().call()[0])
            self.pools.append(Pool(info, contract, info.token0 == "WETH", start))
        assert len(self.pools) >= 2, deployment.pools  # aligned pushes need more than one

    def fund(self) -> None:
        w3, me = self.w3, self.address
        rpc_call(self.chain.rpc_url, "anvil_setBalance", [me, hex(10**6 * 10**18)])
        weth = w3.eth.contract(address=Web3.to_checksum_address(self.weth), abi=WETH_DEPOSIT_ABI)
        wrap: TxParams = {"from": me, "value": Wei(50_000 * 10**18)}
        self._wait(weth.functions.deposit().transact(wrap))
        usdc = w3.eth.contract(address=Web3.to_checksum_address(self.usdc), abi=MINT_ABI)
        self._wait(usdc.functions.mint(me, 10**9 * 10**6).transact({"from": me}))
        for token in (self.weth, self.usdc):
            erc20 = w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
            self._wait(
                erc20.functions.approve(self.router.address, 2**256 - 1).transact({"from": me})
            )

    def _wait(self, tx: Any) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=60)
        assert receipt["status"] == 1, receipt
        return receipt

    def target(self, pool: Pool, price: Decimal) -> int:
        """``price`` (USDC per WETH) as the pool's sqrtPriceX96."""
        if pool.weth_is_token0:
            return sqrt_price_x96(price, 18, 6)
        return sqrt_price_x96(1 / price, 6, 18)

    def move_to(self, targets: dict[str, int]) -> int:
        """Swap each pool to its target sqrtPriceX96, all in one block; that block."""
        calls = []
        for pool in self.pools:
            goal = targets[pool.info.pool_id]
            now = int(pool.contract.functions.slot0().call()[0])
            if now == goal:
                continue
            # zeroForOne lowers sqrtPrice: token0 in.  A swap stops at its price limit, so
            # an amount larger than needed is only spent up to the target.
            token0_in = goal < now
            weth_in = token0_in == pool.weth_is_token0
            token_in, token_out = (self.weth, self.usdc) if weth_in else (self.usdc, self.weth)
            amount = 20_000 * 10**18 if weth_in else 60_000_000 * 10**6
            calls.append(
                self.router.functions.exactInputSingle(
                    (token_in, token_out, pool.info.fee, self.address, 2**40, amount, 0, goal)
                )
            )
        rpc_call(self.chain.rpc_url, "evm_setAutomine", [False])
        try:
            sent = [c.transact({"from": self.address, "gas": 3_000_000}) for c in calls]
        finally:
            rpc_call(self.chain.rpc_url, "evm_setAutomine", [True])
            rpc_call(self.chain.rpc_url, "evm_mine", [])
        blocks = {self._wait(tx)["blockNumber"] for tx in sent}
        assert len(blocks) <= 1, blocks  # one block: no mark ever sees the pools apart
        for pool in self.pools:
            assert int(pool.contract.functions.slot0().call()[0]) == targets[pool.info.pool_id]
        return self.w3.eth.block_number

    def push(self, price: Decimal) -> int:
        return self.move_to({p.info.pool_id: self.target(p, price) for p in self.pools})

    def restore(self) -> None:
        self.move_to({p.info.pool_id: p.start for p in self.pools})

    def price(self) -> Decimal:
        """The deepest pool's mid on chain (every pool is at the same price after a push)."""
        prices = []
        for pool in self.pools:
            sqrt = Decimal(int(pool.contract.functions.slot0().call()[0])) / Q96
            raw = sqrt * sqrt  # token1 per token0, base units
            human = raw.scaleb(12) if pool.weth_is_token0 else 1 / raw.scaleb(-12)
            prices.append(human)
        assert max(prices) - min(prices) < Decimal("0.0001"), prices
        return prices[0]
