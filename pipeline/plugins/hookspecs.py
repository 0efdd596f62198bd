"""The one hookspec module of the ``sep`` plugin system.

Hooks *register* objects through the callable they are handed; they never do I/O.  The
pipeline owns connections and lifecycles (it calls ``Venue.start``/``stop``).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from pipeline.plugins.market import MarketSourceSpec
from pipeline.plugins.venue import VenueSpec

PROJECT = "sep"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def sep_register_venues(register: Callable[[VenueSpec], None]) -> None:
    """Called once when the plugin manager loads, before any stage starts.

    Call ``register(VenueSpec(...))`` for each venue the plugin provides.  The return value
    is ignored.  A name registered twice is an error naming both plugins.
    """


@hookspec
def sep_register_strategies(register: Callable[[object], None]) -> None:
    """Called once at load time; ``register`` each strategy factory the plugin provides.

    (The strategy runner arrives in a later issue; the hook name is fixed now.)
    """


@hookspec
def sep_register_risk_checks(register: Callable[[object], None]) -> None:
    """Called once at load time; ``register`` each extra risk check the plugin provides.

    (Extra checks arrive in a later issue; the hook name is fixed now.)
    """


@hookspec
def sep_register_market_sources(register: Callable[[MarketSourceSpec], None]) -> None:
    """Called once at load time; ``register(MarketSourceSpec(...))`` for each market-data
    source the plugin provides (see ``pipeline.plugins.market``).
    """
