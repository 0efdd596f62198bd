"""The one hookspec module of the ``sep`` plugin system.

Every hook hands the plugin a ``register`` callable (llm's ``register_models(register)``)
and the plugin calls it once per thing it provides, with a spec: a name, a pydantic config
model validated from the plugin's section of ``topology.yaml``, and a factory.  Hooks never
do I/O: the pipeline owns connections and lifecycles (it calls ``Venue.start``/``stop``,
``Strategy.on_start``/``on_stop``).

When they are called: ``pipeline.plugins.manager`` calls each hook when it loads a plugin
(a dry run: a plugin whose hook raises or registers something else than its spec fails to
load, reported by name), then collects every plugin's specs wherever they are needed --
``build_venues`` at a worker's start (which checks every plugin section of the topology),
``build_risk_checks`` when the validate stage is built, ``build_strategies`` for the
strategy runner, ``market_sources`` for the market publisher, ``describe_plugins`` for
``sep plugins``.  So a hook may be called several times per process and must register the
same specs every time.  Return values are ignored.  A name registered by two plugins (for
one hook) is an error naming both.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from pipeline.plugins.market import MarketSourceSpec
from pipeline.plugins.risk import RiskCheckSpec
from pipeline.plugins.strategy import StrategySpec
from pipeline.plugins.venue import VenueSpec

PROJECT = "sep"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def sep_register_venues(register: Callable[[VenueSpec], None]) -> None:
    """Call ``register(VenueSpec(...))`` for each venue type the plugin provides.

    A venue is used when ``topology.yaml`` names it under ``plugins.venues`` (enabled); its
    ``config`` there is validated by ``VenueSpec.config_model`` and handed to the factory.
    """


@hookspec
def sep_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    """Call ``register(StrategySpec(...))`` for each strategy the plugin provides.

    A strategy runs when ``topology.yaml`` enables it under ``plugins.strategies``; its
    ``config`` there is validated by ``StrategySpec.config_model`` when a worker starts.
    """


@hookspec
def sep_register_risk_checks(register: Callable[[RiskCheckSpec], None]) -> None:
    """Call ``register(RiskCheckSpec(...))`` for each risk check the plugin provides.

    A check runs in the validate stage, after the built-in limits, for every intent, when
    ``topology.yaml`` enables it under ``plugins.risk_checks``.
    """


@hookspec
def sep_register_market_sources(register: Callable[[MarketSourceSpec], None]) -> None:
    """Call ``register(MarketSourceSpec(...))`` for each market-data source the plugin
    provides (see ``pipeline.plugins.market``); a worker runs the source of every enabled
    venue it has."""
