"""Configuration, signer resolution (no key ever printed), plugin registration, pure helpers."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from pydantic import ValidationError

from pipeline.devstack.chain import DEV_CHAIN_ID
from pipeline.devstack.uniswap import Deployment, PoolInfo, TokenInfo
from pipeline.models.plan import SwapMode
from pipeline.plugins.manager import make_plugin_manager, venue_specs
from pipeline.plugins.venue import VenueContext
from plugins.uniswap_v3 import SignerError, UniswapV3Config, UniswapV3Venue
from plugins.uniswap_v3.contracts import decode_revert, encode_path
from plugins.uniswap_v3.routes import RouteError, resolve, to_units

KEY = "0x" + "5a" * 32  # a throwaway key made up for this test


def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEP_SIGNER_KEY", "SEP_SIGNER_KEYSTORE", "SEP_SIGNER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_a_configured_key_wins_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    clean(monkeypatch)
    config = UniswapV3Config(signer_key=KEY)  # type: ignore[arg-type]
    assert config.load_signer(1).address == Account.from_key(KEY).address
    assert KEY[2:] not in repr(config)
    assert KEY[2:] not in config.model_dump_json()
    with pytest.raises(SignerError) as info:
        UniswapV3Config(signer_key="0x1234").load_signer(1)  # type: ignore[arg-type]
    assert "1234" not in str(info.value)


def test_the_environment_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    clean(monkeypatch)
    monkeypatch.setenv("SEP_SIGNER_KEY", KEY)
    assert UniswapV3Config().load_signer(1).address == Account.from_key(KEY).address


def test_an_encrypted_keystore_with_its_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean(monkeypatch)
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(KEY, "hunter2", kdf="scrypt", iterations=2)))
    config = UniswapV3Config(keystore_file=keystore, password_env="TEST_PW", dev_account=None)
    with pytest.raises(SignerError, match=r"\$TEST_PW is unset"):
        config.load_signer(1)
    monkeypatch.setenv("TEST_PW", "wrong")
    with pytest.raises(SignerError, match="cannot decrypt") as info:
        config.load_signer(1)
    assert KEY[2:] not in str(info.value)
    monkeypatch.setenv("TEST_PW", "hunter2")
    assert config.load_signer(1).address == Account.from_key(KEY).address


def test_dev_accounts_only_on_the_dev_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    clean(monkeypatch)
    assert UniswapV3Config(dev_account=1).load_signer(DEV_CHAIN_ID).address == (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    )  # anvil's well-known account 1
    with pytest.raises(SignerError, match="only for the dev chain"):
        UniswapV3Config(dev_account=1).load_signer(1)
    with pytest.raises(SignerError, match="no signer"):
        UniswapV3Config(dev_account=None).load_signer(DEV_CHAIN_ID)


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        UniswapV3Config.model_validate({"rpc": "http://x"})


def test_the_plugin_registers_the_venue(tmp_path: Path) -> None:
    spec = venue_specs(make_plugin_manager(load_entrypoints=False))["uniswap_v3"]
    assert spec.config_model is UniswapV3Config
    venue = spec.factory(UniswapV3Config(), VenueContext(tmp_path, {}))
    assert isinstance(venue, UniswapV3Venue)
    assert not list(tmp_path.iterdir())  # the factory does no I/O


# -- pure helpers -----------------------------------------------------------------------------


def test_path_encoding_is_token_fee_token() -> None:
    a, b, c = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
    path = encode_path([a, b, c], [500, 3000])
    assert path == bytes.fromhex("11" * 20 + "0001f4" + "22" * 20 + "000bb8" + "33" * 20)
    with pytest.raises(ValueError, match="need 2 fees"):
        encode_path([a, b, c], [500])


def test_revert_data_decodes_to_the_message() -> None:
    error = "0x08c379a0" + "20".rjust(64, "0") + "3".rjust(64, "0") + b"STF".hex().ljust(64, "0")
    assert decode_revert(error) == "STF"
    panic = "0x4e487b71" + "11".rjust(64, "0")
    assert decode_revert(panic) == "panic 0x11 (arithmetic overflow)"
    assert decode_revert(None) == "reverted without a reason"
    assert decode_revert("0x") == "reverted without a reason"


def deployment() -> Deployment:
    addr = "0x" + "ab" * 20
    tokens = {
        s: TokenInfo(symbol=s, address="0x" + f"{i:02x}" * 20, decimals=d)
        for i, (s, d) in enumerate((("WETH", 18), ("USDC", 6), ("WBTC", 8)), start=1)
    }
    pools = (
        PoolInfo(
            pool_id="P1", address=addr, token0="WETH", token1="USDC", fee=500, tick_spacing=10
        ),
        PoolInfo(
            pool_id="P2", address=addr, token0="WBTC", token1="WETH", fee=3000, tick_spacing=60
        ),
    )
    return Deployment(
        chain_id=31337,
        factory=addr,
        position_manager=addr,
        router=addr,
        quoter=addr,
        weth=tokens["WETH"].address,
        tokens=tokens,
        pools=pools,
        trader=addr,
        liquidity_provider=addr,
        block=1,
    )


def test_a_step_resolves_to_base_units_and_a_reversed_exact_out_path(make_step: Any) -> None:
    dep = deployment()
    pools = {p.pool_id: p for p in dep.pools}
    step = make_step

    order = resolve(
        step("s", "WBTC>P2>WETH>P1>USDC", "0.5", limit="29000.0000001"), "uniswap_v3", dep, pools
    )
    assert (order.amount, order.limit) == (50_000_000, 29_000_000_001)  # min_out rounds up
    fn, args = order.router_call("0x" + "99" * 20, 1234)
    assert fn == "exactInput"
    assert args[0][0] == encode_path([t.address for t in order.tokens], [3000, 500])
    out = resolve(
        step("s", "WBTC>P2>WETH>P1>USDC", "100", mode=SwapMode.EXACT_OUT, limit="0.01"),
        "uniswap_v3",
        dep,
        pools,
    )
    assert out.path() == encode_path([t.address for t in out.tokens][::-1], [500, 3000])
    assert out.max_spend == 1_000_000
    with pytest.raises(RouteError, match="used twice"):
        resolve(step("s", "WETH>P1>USDC>P1>WETH", "1"), "uniswap_v3", dep, pools)
    with pytest.raises(RouteError, match="less than one base unit"):
        resolve(step("s", "USDC>P1>WETH", "0.0000001"), "uniswap_v3", dep, pools)


def test_units_round_the_safe_way() -> None:
    assert to_units(Decimal("1.0000001"), 6) == 1_000_000
    assert to_units(Decimal("1.0000001"), 6, round_up=True) == 1_000_001
    assert to_units(Decimal("12345678901.123456789012345678"), 18) == (
        12345678901123456789012345678
    )
