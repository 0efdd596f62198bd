"""Uniswap V3 on the wire: ABIs, multi-hop paths, ``Swap`` logs and revert reasons.

Pure functions of bytes and integers; the venue does the I/O. The ABIs are the real
contracts' (the pinned npm artifacts, see ``pipeline.devstack.chain_dist``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from pipeline.devstack.chain_dist import uniswap_artifact

SWAP_TOPIC = "0x" + keccak(text="Swap(address,address,int256,int256,uint160,uint128,int24)").hex()
MINT_TOPIC = "0x" + keccak(text="Mint(address,address,int24,int24,uint128,uint256,uint256)").hex()
BURN_TOPIC = "0x" + keccak(text="Burn(address,int24,int24,uint128,uint256,uint256)").hex()
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
MAX_UINT256 = 2**256 - 1

ERC20_ABI: list[dict[str, Any]] = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "allowance",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "approve",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]
"""The three ERC20 functions the venue uses (any ERC20, not only the test token)."""


@functools.cache
def abi(name: str) -> list[dict[str, Any]]:
    """The ABI of ``SwapRouter``, ``QuoterV2`` or ``UniswapV3Pool``."""
    found: list[dict[str, Any]] = uniswap_artifact(name)["abi"]
    return found


def encode_path(tokens: Sequence[str], fees: Sequence[int]) -> bytes:
    """Uniswap's packed path: token (20 bytes), fee (3 bytes), token, fee, ..., token.

    For exact-output swaps the router wants the path reversed (output token first).
    """
    if len(tokens) != len(fees) + 1:
        raise ValueError(f"{len(tokens)} tokens need {len(tokens) - 1} fees, got {len(fees)}")
    out = bytearray(bytes.fromhex(tokens[0][2:]))
    for fee, token in zip(fees, tokens[1:], strict=True):
        out += fee.to_bytes(3, "big") + bytes.fromhex(token[2:])
    return bytes(out)


@dataclass(frozen=True)
class SwapLog:
    """A pool's ``Swap`` event: signed amounts from the pool's view (positive: paid in)."""

    pool: str
    amount0: int
    amount1: int
    sqrt_price_x96: int
    liquidity: int
    tick: int


def swap_logs(logs: Sequence[Any]) -> list[SwapLog]:
    """The ``Swap`` events in a receipt's logs, in log order, pool addresses checksummed."""
    out = []
    for log in logs:
        topics = log["topics"]
        if not topics or _hex(topics[0]) != SWAP_TOPIC:
            continue
        amount0, amount1, sqrt_price, liquidity, tick = abi_decode(
            ["int256", "int256", "uint160", "uint128", "int24"], bytes(log["data"])
        )
        out.append(
            SwapLog(
                to_checksum_address(log["address"]), amount0, amount1, sqrt_price, liquidity, tick
            )
        )
    return out


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


_PANICS = {
    0x01: "assert",
    0x11: "arithmetic overflow",
    0x12: "division by zero",
    0x32: "array index out of bounds",
}


def decode_revert(data: bytes | str | None) -> str:
    """A person's reading of revert data: the ``Error(string)`` message (Uniswap's
    "Too little received", "Transaction too old", "STF", ...), a panic, or the raw bytes."""
    if data is None:
        return "reverted without a reason"
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if raw[:4] == ERROR_SELECTOR:
        (message,) = abi_decode(["string"], raw[4:])
        return str(message)
    if raw[:4] == PANIC_SELECTOR:
        (code,) = abi_decode(["uint256"], raw[4:])
        return f"panic 0x{code:02x} ({_PANICS.get(code, 'unknown')})"
    return f"reverted with data 0x{raw.hex()}" if raw else "reverted without a reason"


REASONS = {
    "Too little received": "slippage",
    "Too much requested": "slippage",
    "Transaction too old": "expired",
    "STF": "transfer_failed",
    "SPL": "price_limit",
    "AS": "zero_amount",
}
"""Uniswap's revert messages -> ``StepRejected.reason`` (the message goes in ``detail``)."""


def reason_code(message: str) -> str:
    return REASONS.get(message, "reverted")
