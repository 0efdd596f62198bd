"""Assets: identity, base-unit conversion, and the amount-or-percentage rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from pipeline.models import Asset, AssetSpec

USDC = Asset(
    symbol="USDC", address="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", decimals=6, chain_id=1
)
WETH = Asset(
    symbol="WETH", address="0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", decimals=18, chain_id=1
)
WHOLE = Asset(symbol="NFTISH", address="0x" + "ab" * 20, decimals=0, chain_id=1)


def test_wire_form_is_camel_case() -> None:
    wire = USDC.to_wire()
    assert wire == {"symbol": "USDC", "address": USDC.address, "decimals": 6, "chainId": 1}
    assert Asset.model_validate(wire) == USDC


def test_python_names_are_accepted_too() -> None:
    asset = Asset.model_validate(
        {"symbol": "USDC", "address": USDC.address, "decimals": 6, "chain_id": 1}
    )
    assert asset == USDC


def test_same_symbol_on_two_chains_are_different_assets() -> None:
    arbitrum = USDC.model_copy(update={"chain_id": 42161})
    assert arbitrum != USDC
    assert arbitrum.key != USDC.key


def test_key_is_chain_and_case_folded_address() -> None:
    upper = USDC.model_copy(update={"address": USDC.address.upper().replace("0X", "0x")})
    assert upper.key == USDC.key == f"1:{USDC.address.lower()}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("address", "0x1234"),  # too short
        ("address", "A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB4800"),  # no 0x
        ("address", "0x" + "g" * 40),  # not hex
        ("decimals", -1),
        ("decimals", 37),
        ("chainId", 0),
        ("symbol", ""),
        ("symbol", "US DC"),
    ],
)
def test_invalid_asset_fields_are_rejected_with_their_wire_name(field: str, value: object) -> None:
    data = {**USDC.to_wire(), field: value}
    with pytest.raises(ValidationError) as info:
        Asset.model_validate(data)
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Asset.model_validate({**USDC.to_wire(), "name": "USD Coin"})
    assert info.value.errors()[0]["loc"] == ("name",)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_assets_are_immutable() -> None:
    with pytest.raises(ValidationError):
        USDC.decimals = 18  # type: ignore[misc]


# ----------------------------------------------------------------------------- base units


@pytest.mark.parametrize(
    ("asset", "amount", "units"),
    [
        (USDC, "1", 1_000_000),
        (USDC, "1.5", 1_500_000),
        (USDC, "0.000001", 1),
        (USDC, "0.0000019", 1),  # dust below one base unit is truncated, never rounded up
        (USDC, "0.0000009", 0),
        (USDC, "1234.5678919", 1_234_567_891),
        (WETH, "1", 10**18),
        (WETH, "0.000000000000000001", 1),
        (WETH, "2.9999999999999999999", 2_999_999_999_999_999_999),
        (WHOLE, "7.99", 7),
        (USDC, "1E+3", 1_000_000_000),  # exponent notation is still an amount
    ],
)
def test_to_base_units_truncates(asset: Asset, amount: str, units: int) -> None:
    assert asset.to_base_units(Decimal(amount)) == units


@pytest.mark.parametrize(
    "amount",
    [
        # 29+ significant digits once scaled: more than the default decimal context holds.
        "99999999999.999999999999999999",
        "12345678901.123456789012345678",
        "1999999999999.9999999999999999999",
    ],
)
def test_to_base_units_is_exact_for_large_amounts(amount: str) -> None:
    dai = WETH.model_copy(update={"symbol": "DAI"})
    # The exact floor computed with integers only: whole part and the fraction's digits.
    whole, _, fraction = amount.partition(".")
    expected = int(whole) * 10**18 + int((fraction + "0" * 18)[:18])
    assert dai.to_base_units(Decimal(amount)) == expected


@pytest.mark.parametrize(
    ("asset", "units", "amount"),
    [(USDC, 1_500_000, "1.5"), (USDC, 1, "0.000001"), (WETH, 10**18, "1"), (WHOLE, 7, "7")],
)
def test_from_base_units(asset: Asset, units: int, amount: str) -> None:
    assert asset.from_base_units(units) == Decimal(amount)


@pytest.mark.parametrize("amount", ["0", "1", "0.123456", "1000000.000001", "42.5"])
def test_base_units_round_trip_when_no_dust(amount: str) -> None:
    assert USDC.from_base_units(USDC.to_base_units(Decimal(amount))) == Decimal(amount)


# ----------------------------------------------------------------------------- AssetSpec


def test_spec_with_amount() -> None:
    spec = AssetSpec.model_validate({"asset": USDC.to_wire(), "amount": "12.50"})
    assert spec.amount == Decimal("12.50")
    assert spec.percentage is None


def test_spec_amount_goes_on_the_wire_as_a_plain_string() -> None:
    for given, wire in [("12.50", "12.50"), ("1E+3", "1000"), ("1E-7", "0.0000001")]:
        spec = AssetSpec(asset=USDC, amount=Decimal(given))
        assert spec.to_wire()["amount"] == wire
        assert f'"amount":"{wire}"' in spec.model_dump_json(by_alias=True)


def test_spec_without_amount_omits_it_on_the_wire() -> None:
    assert AssetSpec(asset=USDC).to_wire() == {"asset": USDC.to_wire()}


def test_spec_rejects_amount_and_percentage_together() -> None:
    with pytest.raises(ValidationError, match="either amount or percentage"):
        AssetSpec.model_validate({"asset": USDC.to_wire(), "amount": "1", "percentage": "50"})


@pytest.mark.parametrize("percentage", ["0", "-1", "100.01"])
def test_spec_percentage_is_in_0_exclusive_to_100(percentage: str) -> None:
    with pytest.raises(ValidationError) as info:
        AssetSpec.model_validate({"asset": USDC.to_wire(), "percentage": percentage})
    assert info.value.errors()[0]["loc"] == ("percentage",)


def test_spec_percentage_100_is_allowed() -> None:
    spec = AssetSpec.model_validate({"asset": USDC.to_wire(), "percentage": "100"})
    assert spec.percentage == 100


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_spec_amount_must_be_finite(amount: str) -> None:
    with pytest.raises(ValidationError) as info:
        AssetSpec.model_validate({"asset": USDC.to_wire(), "amount": amount})
    assert info.value.errors()[0]["loc"] == ("amount",)


def test_spec_error_path_reaches_into_the_asset_by_wire_name() -> None:
    bad = {**USDC.to_wire()}
    del bad["chainId"]
    with pytest.raises(ValidationError) as info:
        AssetSpec.model_validate({"asset": bad, "amount": "1"})
    assert [e["loc"] for e in info.value.errors()] == [("asset", "chainId")]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("decimals", 1e30, "must be a whole number of decimals from 0 to 36; got 1e+30"),
        ("decimals", 6.5, "must be a whole number of decimals from 0 to 36; got 6.5"),
        ("decimals", True, "must be a whole number of decimals from 0 to 36; got true"),
        (
            "chainId",
            float(2**70),  # what orjson makes of a 22-digit integer
            "must be a whole number from 1 to 9007199254740991, e.g. 1 for Ethereum; "
            "got 1.1805916207174113e+21",
        ),
        ("address", "0x1234", 'must be "0x" and 40 hexadecimal digits; got "0x1234"'),
        (
            "symbol",
            "US DC",
            "must be 1 to 32 letters, digits, '.', '_' or '-', e.g. \"WETH\"; got \"US DC\"",
        ),
    ],
)
def test_asset_messages_say_what_the_field_must_be(field: str, value: object, message: str) -> None:
    # Not "Unable to parse input string as an integer" nor a regular expression.
    with pytest.raises(ValidationError) as info:
        Asset.model_validate({**USDC.to_wire(), field: value})
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [((field,), message)]


def test_spec_percentage_out_of_range_says_the_range() -> None:
    with pytest.raises(ValidationError) as info:
        AssetSpec.model_validate({"asset": USDC.to_wire(), "percentage": "1e30"})
    assert info.value.errors()[0]["msg"] == (
        'must be a percentage above 0 and at most 100, e.g. "50"; got "1e30"'
    )


def test_spec_amount_and_percentage_together_is_said_without_a_python_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        AssetSpec.model_validate({"asset": USDC.to_wire(), "amount": "1", "percentage": "50"})
    assert info.value.errors()[0]["msg"] == "give either amount or percentage, not both"


def test_an_asset_that_is_not_an_object_is_said_so() -> None:
    with pytest.raises(ValidationError) as info:
        AssetSpec.model_validate({"asset": "USDC", "amount": "1"})
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (("asset",), 'must be a JSON object; got "USDC"')
    ]
