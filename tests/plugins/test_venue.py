"""Capabilities are declared: ``Routing`` on the venue class (``DeclaresRouting``) and extra
operations as runtime-checkable protocols (``HasBalances``), read by the stages as such."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from plugin_support import TOPOLOGY

from pipeline.plugins import DeclaresRouting, HasBalances, Routing, build_venues
from pipeline.plugins.venue import routing_of
from plugins.sim_venue import SimVenue
from plugins.uniswap_v3 import UniswapV3Venue


class Pinned:
    """A venue declaring its own routing."""

    name = "pinned"
    routing = Routing(max_splits=2)


class Account:
    async def balances(self) -> dict[str, Decimal]:
        return {"USDC": Decimal(1)}


def test_the_builtins_declare_their_capabilities(tmp_path: Path) -> None:
    venues = build_venues(TOPOLOGY, tmp_path)  # factories do no I/O: nothing connects
    uniswap, sim = venues["uniswap_v3"], venues["sim"]
    assert isinstance(uniswap, UniswapV3Venue)
    assert isinstance(sim, SimVenue)
    assert routing_of(uniswap) == Routing(max_splits=4, pays_gas=True)
    assert routing_of(sim) == Routing()  # declares nothing: one path, no gas
    assert isinstance(uniswap, HasBalances)
    assert not isinstance(sim, HasBalances)  # no account: unlimited


def test_a_venue_declaring_routing_and_one_with_an_account() -> None:
    assert isinstance(Pinned(), DeclaresRouting)
    assert routing_of(Pinned()) == Routing(max_splits=2, pays_gas=False)
    assert isinstance(Account(), HasBalances)
    assert not isinstance(Pinned(), HasBalances)
