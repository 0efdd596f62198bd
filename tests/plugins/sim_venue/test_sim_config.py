"""SimVenueConfig: what a valid ``plugins.venues.sim.config`` is, and where errors point."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.models import Asset
from plugins.sim_venue import SimVenueConfig


def _pool(**overrides: Any) -> dict[str, Any]:
    pool = {
        "pool_id": "p",
        "token0": "WETH",
        "token1": "USDC",
        "reserve0": "1000",
        "reserve1": "3000000",
        "fee": 3000,
    }
    pool.update(overrides)
    return pool


def _errors(data: dict[str, Any], assets: dict[str, Asset] | None = None) -> list[tuple[str, str]]:
    context = None if assets is None else {"assets": assets}
    with pytest.raises(ValidationError) as caught:
        SimVenueConfig.model_validate(data, context=context)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


def test_valid_config_parses_reserves_as_exact_decimals(assets: dict[str, Asset]) -> None:
    config = SimVenueConfig.model_validate(
        {"latency_ms": 25, "pools": [_pool(reserve0="0.000000000000000001")]},
        context={"assets": assets},
    )
    assert config.latency_ms == 25
    assert config.pools[0].reserve0 == Decimal("1e-18")
    assert config.pools[0].base_reserves(assets) == (1, 3_000_000 * 10**6)
    assert config.ledger_file == "ledger.sqlite"


@pytest.mark.parametrize(
    ("data", "loc", "needle"),
    [
        ({"latency_ms": -1, "pools": [_pool()]}, "latency_ms", "greater than or equal to 0"),
        ({"pools": [_pool(reserve0="0")]}, "pools.0.reserve0", "greater than 0"),
        ({"pools": [_pool(reserve1="-5")]}, "pools.0.reserve1", "greater than 0"),
        ({"pools": [_pool(reserve0="NaN")]}, "pools.0.reserve0", "finite"),
        ({"pools": [_pool(fee=1_000_000)]}, "pools.0.fee", "less than 1000000"),
        ({"pools": [_pool(fee=-1)]}, "pools.0.fee", "greater than or equal to 0"),
        ({"pools": [_pool(token1="WETH")]}, "pools.0", "both 'WETH'"),
        ({"pools": [_pool(), _pool()]}, "pools", "pool id 'p' appears more than once"),
        ({"pools": [_pool(feee=3)]}, "pools.0.feee", "Extra inputs are not permitted"),
        ({"pools": [_pool()], "latency": 5}, "latency", "Extra inputs are not permitted"),
        ({"pools": []}, "pools", "configure at least one pool"),
        ({"pools": [_pool()], "ledger_file": "../elsewhere"}, "ledger_file", "match pattern"),
    ],
)
def test_invalid_config_is_a_pydantic_error_at_the_field(
    data: dict[str, Any], loc: str, needle: str
) -> None:
    errors = _errors(data)
    assert len(errors) == 1, errors
    assert errors[0][0] == loc
    assert needle in errors[0][1]


def test_asset_checks_run_when_the_registry_is_in_context(assets: dict[str, Asset]) -> None:
    # Without the registry an unknown symbol cannot be judged (the manager validates first).
    SimVenueConfig.model_validate({"pools": [_pool(token0="XYZ")]})
    assert _errors({"pools": [_pool(token0="XYZ")]}, assets) == [
        (
            "pools.0.token0",
            "Value error, unknown asset 'XYZ'; the topology has ['ARB', 'DAI', 'USDC', 'WETH']",
        ),
    ]


def test_a_pool_cannot_span_chains(assets: dict[str, Asset]) -> None:
    [(loc, msg)] = _errors({"pools": [_pool(token0="ARB")]}, assets)
    assert loc == "pools.0"
    assert "ARB is on chain 42161 and USDC on chain 1" in msg


def test_reserves_must_be_at_least_one_base_unit(assets: dict[str, Asset]) -> None:
    [(loc, msg)] = _errors({"pools": [_pool(reserve1="0.0000001")]}, assets)
    assert loc == "pools.0"
    assert "reserve1 0.0000001 is less than one base unit of USDC (6 decimals)" in msg
