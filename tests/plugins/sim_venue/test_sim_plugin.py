"""The sim venue as a plugin: registered by the manager, built from the repository's topology."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.plugins import build_venues, make_plugin_manager, venue_specs
from pipeline.topology import TopologyError, load_topology, parse_topology
from pipeline.topology.loader import DEFAULT_PATH
from plugins.sim_venue import SimVenue, SimVenueConfig


def test_the_builtin_plugin_registers_the_sim_venue() -> None:
    spec = venue_specs(make_plugin_manager(load_entrypoints=False))["sim"]
    assert spec.config_model is SimVenueConfig
    assert spec.description


async def test_build_venues_builds_sim_from_the_repository_topology(tmp_path: Path) -> None:
    topology = load_topology()
    venues = build_venues(topology, tmp_path, make_plugin_manager(load_entrypoints=False))
    venue = venues["sim"]
    assert isinstance(venue, SimVenue)
    assert not (tmp_path / "venues").exists()  # building does no I/O; start() does
    await venue.start()
    try:
        pools = await venue.pools()
        assert (tmp_path / "venues" / "sim" / "ledger.sqlite").exists()
    finally:
        await venue.stop()
    configured = topology.plugins.venues["sim"].config["pools"]
    assert [p.pool_id for p in pools] == [p["pool_id"] for p in configured]
    first = pools[0]
    chain = topology.asset("WETH").chain_id
    assert (first.token0, first.token1, first.chain_id) == ("WETH", "USDC", chain)
    assert first.reserve0 == int(configured[0]["reserve0"]) * 10**18
    assert first.reserve1 == int(configured[0]["reserve1"]) * 10**6


def _topology_with(edit: Any) -> Any:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    edit(data["plugins"]["venues"]["sim"]["config"])
    return parse_topology(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("edit", "path", "needle"),
    [
        (
            lambda c: c["pools"][1].update(fee=1_000_000),
            "plugins.venues.sim.config.pools[sim-weth-usdc-30].fee",
            "less than 1000000",
        ),
        (lambda c: c.update(latency=5), "plugins.venues.sim.config.latency", "Extra inputs"),
        (
            lambda c: c.update(latency_ms=-1),
            "plugins.venues.sim.config.latency_ms",
            "greater than or equal to 0",
        ),
        (
            lambda c: c["pools"][0].update(reserve0="0"),
            "plugins.venues.sim.config.pools[sim-weth-usdc-5].reserve0",
            "greater than 0",
        ),
        # Checked by the factory, which sees the asset registry.
        (
            lambda c: c["pools"][2].update(token0="WBTX"),
            "plugins.venues.sim.config.pools[sim-wbtc-weth-30].token0",
            "unknown asset 'WBTX'",
        ),
        (
            lambda c: c["pools"][0].update(token1="ARB"),
            "plugins.venues.sim.config.pools[sim-weth-usdc-5]",
            "a pool lives on one chain",
        ),
    ],
)
def test_a_bad_sim_config_is_a_topology_error_naming_its_path(
    tmp_path: Path, edit: Any, path: str, needle: str
) -> None:
    topology = _topology_with(edit)
    with pytest.raises(TopologyError) as caught:
        build_venues(topology, tmp_path, make_plugin_manager(load_entrypoints=False))
    [(where, message)] = caught.value.problems
    assert where == path
    assert needle in message
    assert path in str(caught.value)
