"""``ChainService``: a local EVM node (anvil, from the pinned npm package) for the dev stack.

The node's state lives in ``<data_dir>/state.json``: anvil loads it at start and writes it
at a graceful exit and every ``state_interval`` seconds (so a SIGKILL loses at most that
much). A restarted node with saved state therefore still has the Uniswap V3 deployment, and
``pipeline.devstack.uniswap.ensure_deployment`` reuses it instead of deploying again.

Chain id 31337 and anvil's default dev accounts (the public "test test ... junk" mnemonic),
which are unlocked on the node: the deployer sends from them without a key. They are public
test keys, good for nothing but a throwaway chain.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.devstack.chain_dist import anvil_binary
from pipeline.devstack.ports import HOST, port_accepts
from pipeline.devstack.probes import NotReadyError
from pipeline.devstack.service import Service

DEV_CHAIN_ID = 31337
DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default mnemonic: public, known to every Ethereum tool; a dev chain only."""


def dev_account_key(index: int) -> str:
    """The private key (0x hex) of anvil's dev account ``index``; account 1 is the trader.

    Derived from the public dev mnemonic rather than written down, so no key-shaped string
    sits in the repository. Never log it: it is still a key.
    """
    from eth_account import Account  # imported lazily: web3 only for the chain

    Account.enable_unaudited_hdwallet_features()  # BIP-44 derivation of the dev accounts
    account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    key: str = account.key.to_0x_hex()
    return key


class ChainService(Service):
    """anvil on ``127.0.0.1:port``, automining (each transaction gets its own block at once)."""

    name = "chain"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        log_dir: Path | None = None,
        *,
        chain_id: int = DEV_CHAIN_ID,
        state_interval: int = 2,
    ) -> None:
        super().__init__(data_dir, port, log_dir)
        self.chain_id = chain_id
        self.state_interval = state_interval
        self._binary: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    def setup(self) -> None:
        self._binary = anvil_binary()  # installs the npm packages on first use

    def command(self) -> list[str]:
        assert self._binary is not None, "setup() first"
        return [
            str(self._binary), "--host", HOST, "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--state", str(self.state_file), "--state-interval", str(self.state_interval),
            # Logging every request costs the node time on the hot path and fills the log;
            # failures still show up in the RPC responses.
            "--silent",
        ]  # fmt: skip

    async def probe(self) -> None:
        if not port_accepts(self.port):
            raise ConnectionRefusedError(f"nothing listens on {HOST}:{self.port} yet")
        await check_chain(self.url)


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    """One JSON-RPC request with the standard library (probes, tests; not the hot path)."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    ).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise NotReadyError(f"{method}: {reply['error']}")
    return reply["result"]


async def check_chain(url: str) -> None:
    """``eth_chainId`` and ``eth_blockNumber`` must answer (the node has loaded its state)."""
    await asyncio.to_thread(rpc_call, url, "eth_chainId", None, 3.0)
    await asyncio.to_thread(rpc_call, url, "eth_blockNumber", None, 3.0)
