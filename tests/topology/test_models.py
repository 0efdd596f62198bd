"""The topology models: defaults, bounds, uniqueness and the lookups the stages use."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.topology import BatchSpec, StageSpec, TopicSpec, Topology

ASSET = {"symbol": "USDC", "address": "0x" + "22" * 20, "decimals": 6, "chainId": 1}


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "topics": [
            {"name": "in", "partitions": 2, "key": "k"},
            {"name": "out", "partitions": 2, "key": "k"},
        ],
        "stages": [
            {"name": "only", "function": "pkg.mod:build", "inputs": ["in"], "outputs": ["out"]}
        ],
        "assets": [ASSET],
        "risk": {"max_notional": "100", "max_slippage": "0.05", "reference_prices": {"USDC": "1"}},
    }
    data.update(overrides)
    return data


def messages(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Topology.model_validate(data)
    return [e["msg"] for e in info.value.errors()]


def test_minimal_topology_and_defaults() -> None:
    topology = Topology.model_validate(minimal())
    assert topology.app.id == "sep"
    assert topology.app.mode == "live"
    assert topology.plugins.venues == {}
    only = topology.stage("only")
    assert only.concurrency == 1
    assert only.batch == BatchSpec(max=500, within_ms=5)
    assert topology.topic("in").retention_ms == 7 * 24 * 3600 * 1000
    assert topology.risk.quote_asset == "USDC"
    assert topology.risk.min_time_window_ms == 1_000


@pytest.mark.parametrize(
    "lookup", [lambda t: t.topic("nope"), lambda t: t.stage("nope"), lambda t: t.asset("nope")]
)
def test_lookups_raise_key_error_for_unknown_names(lookup: Any) -> None:
    topology = Topology.model_validate(minimal())
    with pytest.raises(KeyError):
        lookup(topology)


def test_duplicate_topic_names() -> None:
    data = minimal()
    data["topics"].append({"name": "in", "partitions": 1, "key": "k"})
    assert any("topic names must be unique" in m for m in messages(data))


def test_duplicate_stage_names() -> None:
    data = minimal()
    data["stages"].append(dict(data["stages"][0]))
    assert any("stage names must be unique" in m for m in messages(data))


def test_duplicate_asset_symbols_even_across_chains() -> None:
    data = minimal(assets=[ASSET, {**ASSET, "chainId": 42161, "address": "0x" + "33" * 20}])
    assert any("asset symbols must be unique" in m for m in messages(data))


def test_stage_output_must_be_a_declared_topic() -> None:
    data = minimal()
    data["stages"][0]["outputs"] = ["out", "elsewhere"]
    assert any("'only' names unknown topic 'elsewhere'" in m for m in messages(data))


def test_reference_price_for_unknown_asset() -> None:
    data = minimal()
    data["risk"]["reference_prices"]["WETH"] = "3000"
    assert any("unknown asset 'WETH'" in m for m in messages(data))


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (BatchSpec, {"max": 0}),
        (BatchSpec, {"within_ms": 60_001}),
        (BatchSpec, {"within_ms": -1}),
        (TopicSpec, {"name": "has space", "partitions": 1, "key": "k"}),
        (TopicSpec, {"name": "t", "partitions": 1025, "key": "k"}),
        (TopicSpec, {"name": "t", "partitions": 1, "key": "k", "retention_ms": -2}),
        (StageSpec, {"name": "Plan", "function": "m:f", "inputs": ["t"]}),
        (StageSpec, {"name": "plan", "function": "no_colon", "inputs": ["t"]}),
        (StageSpec, {"name": "plan", "function": "m:f", "inputs": []}),
        (StageSpec, {"name": "plan", "function": "m:f", "inputs": ["t"], "concurrency": 0}),
    ],
)
def test_field_bounds(model: type[Any], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_retention_minus_one_means_forever() -> None:
    assert TopicSpec(name="t", partitions=1, key="k", retention_ms=-1).retention_ms == -1


@pytest.mark.parametrize(
    ("field", "value"), [("max_notional", "0"), ("max_slippage", "0"), ("max_slippage", "1.01")]
)
def test_risk_limit_bounds(field: str, value: str) -> None:
    data = minimal()
    data["risk"][field] = value
    with pytest.raises(ValidationError) as info:
        Topology.model_validate(data)
    assert info.value.errors()[0]["loc"] == ("risk", field)


def test_plugin_config_is_free_form_for_the_plugin_to_validate() -> None:
    data = minimal(
        plugins={"venues": {"x": {"config": {"anything": [1, 2]}}, "y": {"enabled": False}}}
    )
    topology = Topology.model_validate(data)
    assert topology.plugins.venues["x"].config == {"anything": [1, 2]}
    assert topology.plugins.venues["x"].enabled is True
    assert topology.plugins.venues["y"].enabled is False


def test_plugin_entry_rejects_unknown_keys() -> None:
    data = minimal(plugins={"venues": {"x": {"confg": {}}}})
    with pytest.raises(ValidationError) as info:
        Topology.model_validate(data)
    assert info.value.errors()[0]["loc"] == ("plugins", "venues", "x", "confg")


def test_topology_is_immutable() -> None:
    topology = Topology.model_validate(minimal())
    with pytest.raises(ValidationError):
        topology.stages = ()  # type: ignore[misc]


def test_a_singleton_stage_is_listed_and_never_fused() -> None:
    stages = [
        {"name": "a", "function": "m:b", "inputs": ["in"], "outputs": ["out"], "singleton": True},
        {"name": "b", "function": "m:b", "inputs": ["out"]},
    ]
    assert Topology.model_validate(minimal(stages=stages)).singleton_stages == ("a",)
    (message,) = messages(minimal(stages=stages, fusion=[["a", "b"]]))
    assert "fusion[0][0]: stage 'a' is a singleton; it runs alone, never fused" in message


def test_a_strategy_may_name_its_plugin_and_nothing_else_may() -> None:
    data = minimal(plugins={"strategies": {"dca-2": {"plugin": "dca"}}})
    use = Topology.model_validate(data).plugins.strategies["dca-2"]
    assert (use.plugin_name("dca-2"), use.enabled) == ("dca", True)
    (message,) = messages(minimal(plugins={"venues": {"sim-2": {"plugin": "sim"}}}))
    assert "plugins.venues.sim-2.plugin: only strategies name their plugin" in message
