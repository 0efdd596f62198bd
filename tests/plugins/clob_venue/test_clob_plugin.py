"""The clob venue as a plugin: registered instances, config validation with YAML paths, and
clob_a / clob_b built from the repository's topology once enabled."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml
from clob_support import ASSETS, clob_config, market
from pydantic import ValidationError

import plugins.clob_venue
from pipeline.plugins import build_venues, make_plugin_manager, venue_specs
from pipeline.topology import TopologyError, load_topology, parse_topology
from pipeline.topology.loader import DEFAULT_PATH
from plugins.clob_venue import INSTANCES, ClobVenue, ClobVenueConfig


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """The plugin manager as a worker builds it (clob is a built-in; no entry points)."""
    manager = make_plugin_manager(load_entrypoints=False)
    assert manager.is_registered(plugins.clob_venue)
    return manager


def test_the_plugin_registers_every_instance_name(pm: pluggy.PluginManager) -> None:
    specs = venue_specs(pm)
    assert set(INSTANCES) <= set(specs)
    assert all(specs[n].config_model is ClobVenueConfig for n in INSTANCES)


def test_the_repository_topology_has_clob_a_and_b_disabled() -> None:
    venues = load_topology().plugins.venues
    assert not venues["clob_a"].enabled
    assert not venues["clob_b"].enabled


def _enabled(edit: Any = None) -> Any:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    for name in ("clob_a", "clob_b"):
        data["plugins"]["venues"][name]["enabled"] = True
    data["plugins"]["venues"]["uniswap_v3"]["enabled"] = False
    if edit is not None:
        edit(data["plugins"]["venues"])
    return parse_topology(yaml.safe_dump(data))


async def test_clob_a_and_b_build_as_two_exchanges_with_different_fees_and_depth(
    pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    venues = build_venues(_enabled(), tmp_path, pm)
    a, b = venues["clob_a"], venues["clob_b"]
    assert isinstance(a, ClobVenue)
    assert isinstance(b, ClobVenue)
    assert (a.name, b.name) == ("clob_a", "clob_b")
    assert a.config.taker_fee < b.config.taker_fee
    for venue in (a, b):
        await venue.start()
    try:
        book_a, book_b = (await a.books())["WETH-USDC"], (await b.books())["WETH-USDC"]
    finally:
        for venue in (a, b):
            await venue.stop()
    assert (tmp_path / "venues" / "clob_a" / "ledger.sqlite").exists()
    assert (tmp_path / "venues" / "clob_b" / "ledger.sqlite").exists()
    assert len(book_a.asks) == 20
    assert len(book_b.asks) == 10
    depth_a = sum(s for _, s in book_a.asks) * a.markets["WETH-USDC"].config.lot_size
    depth_b = sum(s for _, s in book_b.asks) * b.markets["WETH-USDC"].config.lot_size
    assert depth_a > depth_b > Decimal(0)
    spread_a = (book_a.asks[0][0] - book_a.bids[0][0]) * Decimal("0.01")
    spread_b = (book_b.asks[0][0] - book_b.bids[0][0]) * Decimal("0.05")
    assert spread_a < spread_b


@pytest.mark.parametrize(
    ("edit", "path", "needle"),
    [
        (
            lambda v: v["clob_a"]["config"].update(taker_fee=1_000_000),
            "plugins.venues.clob_a.config.taker_fee",
            "less than 1000000",
        ),
        (
            lambda v: v["clob_b"]["config"].update(maker_fee=-2000),
            "plugins.venues.clob_b.config",
            "rebate",
        ),
        (
            lambda v: v["clob_a"]["config"]["markets"]["WETH-USDC"].update(tick_size="0"),
            "plugins.venues.clob_a.config.markets.WETH-USDC.tick_size",
            "greater than 0",
        ),
        (
            lambda v: v["clob_a"]["config"]["markets"]["WETH-USDC"]["maker"].update(levels=0),
            "plugins.venues.clob_a.config.markets.WETH-USDC.maker.levels",
            "greater than or equal",
        ),
        # Checked by the factory, which sees the asset registry.
        (
            lambda v: v["clob_b"]["config"]["markets"]["WETH-USDC"].update(base="WETX"),
            "plugins.venues.clob_b.config.markets.WETH-USDC.base",
            "unknown asset 'WETX'",
        ),
        (
            lambda v: v["clob_b"]["config"]["markets"]["WETH-USDC"].update(
                tick_size="0.0001", lot_size="0.001"
            ),
            "plugins.venues.clob_b.config.markets.WETH-USDC",
            "tick_size x lot_size",
        ),
    ],
)
def test_a_bad_clob_config_is_a_topology_error_naming_its_path(
    pm: pluggy.PluginManager, tmp_path: Path, edit: Any, path: str, needle: str
) -> None:
    with pytest.raises(TopologyError) as caught:
        build_venues(_enabled(edit), tmp_path, pm)
    [(where, message)] = caught.value.problems
    assert where == path
    assert needle in message


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"markets": {}}, "at least one market"),
        ({"markets": {"m": market(quote="WETH")}}, "both 'WETH'"),
        ({"markets": {"m": market(quote="ARB")}}, "one chain"),
        ({"markets": {"m": market(lot_size="1e-19")}}, "whole number of WETH base units"),
        ({"markets": {"m": market(reference_price="0.001")}}, "below one tick"),
        (
            {"markets": {"m": market({"spread_bps": "5", "level_size": "0.0001"})}},
            "less than one lot",
        ),
        ({"markets": {"bad id": market()}}, "pattern"),
        ({"fees": 1}, "Extra inputs"),
    ],
)
def test_invalid_configs_say_what_is_wrong(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        clob_config(**overrides)


def test_units_follow_from_tick_and_lot() -> None:
    m = clob_config().markets["WETH-USDC"]
    assert (m.lot_units(ASSETS), m.notional_unit(ASSETS)) == (10**15, 10)
