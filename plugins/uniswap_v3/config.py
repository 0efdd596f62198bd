"""The ``uniswap_v3`` venue's configuration (``plugins.venues.uniswap_v3.config``).

Every field has a default that works with ``sep up``'s dev chain, so ``config: {}`` is
valid. The signer is resolved in this order, the first one given wins:

1. ``signer_key`` (config) or ``SEP_SIGNER_KEY`` (environment): a hex private key;
2. ``keystore_file`` (config) or ``SEP_SIGNER_KEYSTORE``: an encrypted JSON keystore, its
   password in the environment variable named by ``password_env``;
3. ``dev_account``: anvil's dev account N (public test keys; refused unless chain 31337).

Keys are ``SecretStr``: they never appear in a repr, a log line or a validation error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pipeline.config import Settings
from pipeline.devstack.chain import DEV_CHAIN_ID


class SignerError(Exception):
    """No usable signer is configured (the message never contains key material)."""


class UniswapV3Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rpc_url: str | None = None
    """JSON-RPC URL; default ``SEP_RPC`` (what ``sep up`` starts)."""
    deployment_file: Path | None = None
    """Where the contracts are (``pipeline.devstack.uniswap.Deployment`` JSON); default
    ``SEP_DEPLOYMENT`` or ``<SEP_DATA>/chain/deployment.json``."""
    signer_key: SecretStr | None = None
    keystore_file: Path | None = None
    password_env: str = "SEP_SIGNER_PASSWORD"
    dev_account: Annotated[int, Field(ge=0, lt=20)] | None = 1
    """anvil's dev account used when no key or keystore is given (1 is the funded trader)."""
    pools: tuple[str, ...] | None = None
    """Pool ids to expose to the router (default: every pool in the deployment)."""
    gas_limit: Annotated[int, Field(ge=21_000)] | None = None
    """A fixed gas limit; ``None``: estimate each swap and add ``gas_headroom_pct``. With a
    fixed limit a swap that would revert is sent and reverts on chain (costs gas)."""
    gas_headroom_pct: Annotated[int, Field(ge=0, le=400)] = 25
    priority_fee_wei: Annotated[int, Field(ge=0)] = 1_000_000_000
    deadline_s: Annotated[int, Field(gt=0)] = 300
    """Swap deadline after the latest block's timestamp (not the wall clock)."""
    receipt_poll_ms: Annotated[int, Field(gt=0)] = 250
    """Longest pause between receipt polls (polling starts at 2 ms and backs off to this)."""
    rpc_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    journal_file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")] = (
        "journal.sqlite"
    )
    """File name of the submissions journal inside the venue's data directory."""

    def resolved_rpc_url(self) -> str:
        return self.rpc_url or Settings().rpc

    def resolved_deployment_file(self) -> Path:
        return (self.deployment_file or Settings().deployment).resolve()

    def load_signer(self, chain_id: int) -> LocalAccount:
        """The account that signs swaps (slow for a keystore: scrypt; call it off the loop)."""
        key = (
            self.signer_key.get_secret_value()
            if self.signer_key
            else os.environ.get("SEP_SIGNER_KEY", "")
        )
        if key:
            try:
                account: LocalAccount = Account.from_key(key)
            except (ValueError, TypeError):
                raise SignerError("the signer key is not a valid private key") from None
            return account
        keystore = self.keystore_file or (
            Path(os.environ["SEP_SIGNER_KEYSTORE"])
            if os.environ.get("SEP_SIGNER_KEYSTORE")
            else None
        )
        if keystore is not None:
            password = os.environ.get(self.password_env)
            if password is None:
                raise SignerError(f"keystore {keystore} given but ${self.password_env} is unset")
            try:
                key_bytes = Account.decrypt(json.loads(keystore.read_text()), password)
            except (OSError, ValueError) as exc:
                # ValueError is also a wrong password ("MAC mismatch"); no key in the message.
                raise SignerError(
                    f"cannot decrypt keystore {keystore}: {type(exc).__name__}"
                ) from None
            keyed: LocalAccount = Account.from_key(key_bytes)
            return keyed
        if self.dev_account is not None:
            if chain_id != DEV_CHAIN_ID:
                raise SignerError(
                    f"dev_account is only for the dev chain ({DEV_CHAIN_ID}); "
                    f"this node is chain {chain_id}: configure a signer"
                )
            from pipeline.devstack.chain import dev_account_key

            dev: LocalAccount = Account.from_key(dev_account_key(self.dev_account))
            return dev
        raise SignerError("no signer: set signer_key / SEP_SIGNER_KEY, a keystore, or dev_account")
