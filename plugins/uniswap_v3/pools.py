"""Reading Uniswap V3 pools into ``PoolState``: slot0, active liquidity, initialised ticks.

Which ticks are initialised is learnt from the pools' ``Mint``/``Burn`` logs (a tick can
only become initialised as a position's bound), scanned incrementally from the deployment
block; each candidate's ``ticks(t)`` then gives its ``liquidityNet`` (a tick whose
``liquidityGross`` fell back to 0 is left out). That is a handful of calls per pool instead
of walking the tick bitmap word by word (6,900 words for a fee-100 pool).

All reads of one ``read`` are pinned to one block, so the state is consistent. A tick's
``liquidityNet`` only changes with a ``Mint`` or ``Burn`` at it (crossing a tick leaves it
alone), so the ticks of a pool are read again only after the log scan saw one; a ``read``
then costs two calls per pool (slot0, liquidity).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from eth_typing import ChecksumAddress
from web3 import AsyncHTTPProvider, AsyncWeb3

from pipeline.devstack.uniswap import Deployment, PoolInfo
from pipeline.models.market import PoolState, TickLiquidity
from pipeline.ops.v3 import virtual_reserves
from plugins.uniswap_v3.contracts import BURN_TOPIC, MINT_TOPIC, abi


def _int24(topic: Any) -> int:
    raw = bytes(topic) if not isinstance(topic, str) else bytes.fromhex(topic[2:])
    return int.from_bytes(raw[-32:], "big", signed=True)


class PoolReader:
    """Reads a set of pools; remembers the tick candidates it has scanned logs for."""

    def __init__(
        self,
        w3: AsyncWeb3[AsyncHTTPProvider],
        deployment: Deployment,
        pools: Sequence[PoolInfo],
        venue: str,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.pools = tuple(pools)
        self.venue = venue
        # Keyed by checksummed address: logs report it so, a hand-written file may not.
        self._contracts = {
            self._key(p): w3.eth.contract(address=self._key(p), abi=abi("UniswapV3Pool"))
            for p in self.pools
        }
        self._candidates: dict[ChecksumAddress, set[int]] = {
            self._key(p): set() for p in self.pools
        }
        self._scanned = -1  # logs of blocks up to here are in _candidates
        # Each pool's initialised ticks, valid while the pool is not in _stale.
        self._ticks: dict[ChecksumAddress, tuple[TickLiquidity, ...]] = {}
        self._stale: set[ChecksumAddress] = set(self._candidates)
        self._lock = asyncio.Lock()  # one log scan at a time

    async def read(
        self, pools: Iterable[PoolInfo] | None = None, block: int | None = None
    ) -> list[PoolState]:
        """The state of ``pools`` (default all) at ``block`` (default the latest)."""
        if block is None:
            block = await self.w3.eth.block_number
        await self._scan_ticks(block)
        wanted = self.pools if pools is None else tuple(pools)
        return list(await asyncio.gather(*(self._read_one(p, block) for p in wanted)))

    async def _scan_ticks(self, block: int) -> None:
        async with self._lock:
            if block <= self._scanned:
                return
            start = self._scanned + 1 if self._scanned >= 0 else 0
            logs = await self.w3.eth.get_logs(
                {
                    "address": [self.w3.to_checksum_address(a) for a in self._candidates],
                    "fromBlock": start,
                    "toBlock": block,
                    "topics": [[MINT_TOPIC, BURN_TOPIC]],
                }
            )
            for log in logs:
                # Mint(sender, owner indexed, tickLower indexed, tickUpper indexed, ...);
                # Burn(owner indexed, tickLower indexed, tickUpper indexed, ...).
                address = self.w3.to_checksum_address(log["address"])
                self._candidates[address].update(
                    (_int24(log["topics"][2]), _int24(log["topics"][3]))
                )
                self._stale.add(address)
            self._scanned = block

    def _key(self, pool: PoolInfo) -> ChecksumAddress:
        return self.w3.to_checksum_address(pool.address)

    async def _read_ticks(self, pool: PoolInfo, block: int) -> tuple[TickLiquidity, ...]:
        address = self._key(pool)
        if address in self._ticks and address not in self._stale:
            return self._ticks[address]
        self._stale.discard(address)
        contract = self._contracts[address]
        candidates = sorted(self._candidates[address])
        infos = await asyncio.gather(
            *(contract.functions.ticks(t).call(block_identifier=block) for t in candidates)
        )
        # ticks(t) = (liquidityGross, liquidityNet, ...): gross 0 means no position uses t.
        self._ticks[address] = tuple(
            TickLiquidity(tick=t, liquidity_net=int(info[1]))
            for t, info in zip(candidates, infos, strict=True)
            if info[0] > 0
        )
        return self._ticks[address]

    async def _read_one(self, pool: PoolInfo, block: int) -> PoolState:
        contract = self._contracts[self._key(pool)]
        slot0, liquidity, initialised = await asyncio.gather(
            contract.functions.slot0().call(block_identifier=block),
            contract.functions.liquidity().call(block_identifier=block),
            self._read_ticks(pool, block),
        )
        sqrt_price, tick = int(slot0[0]), int(slot0[1])
        reserve0, reserve1 = virtual_reserves(int(liquidity), sqrt_price)
        return PoolState(
            pool_id=pool.pool_id,
            venue=self.venue,
            kind="concentrated",
            chain_id=self.deployment.chain_id,
            token0=pool.token0,
            token1=pool.token1,
            reserve0=reserve0,
            reserve1=reserve1,
            fee=pool.fee,
            sqrt_price_x96=sqrt_price,
            liquidity=int(liquidity),
            tick=tick,
            tick_spacing=pool.tick_spacing,
            ticks=initialised,
            block=block,
        )
