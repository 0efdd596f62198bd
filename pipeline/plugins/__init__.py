"""The pluggy plugin system: one hookspec module, the manager, and the contracts plugins
implement (venues, strategies, risk checks, market sources)."""

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.manager import (
    PluginError,
    build_risk_checks,
    build_strategies,
    build_venues,
    check_plugins,
    make_plugin_manager,
    market_sources,
    risk_check_specs,
    strategy_specs,
    venue_specs,
)
from pipeline.plugins.market import MarketData, MarketRecord, MarketSource, MarketSourceSpec
from pipeline.plugins.risk import RiskBreach, RiskCheck, RiskCheckContext, RiskCheckSpec
from pipeline.plugins.strategy import (
    MarketSnapshot,
    Strategy,
    StrategyContext,
    StrategyFill,
    StrategySpec,
)
from pipeline.plugins.venue import (
    DeclaresRouting,
    Fill,
    HasBalances,
    Routing,
    StepRejected,
    Submission,
    TransientVenueError,
    Venue,
    VenueContext,
    VenueError,
    VenueSpec,
)

__all__ = [
    "DeclaresRouting",
    "Fill",
    "HasBalances",
    "MarketData",
    "MarketRecord",
    "MarketSnapshot",
    "MarketSource",
    "MarketSourceSpec",
    "PluginError",
    "RiskBreach",
    "RiskCheck",
    "RiskCheckContext",
    "RiskCheckSpec",
    "Routing",
    "StepRejected",
    "Strategy",
    "StrategyContext",
    "StrategyFill",
    "StrategySpec",
    "Submission",
    "TransientVenueError",
    "Venue",
    "VenueContext",
    "VenueError",
    "VenueSpec",
    "build_risk_checks",
    "build_strategies",
    "build_venues",
    "check_plugins",
    "hookimpl",
    "make_plugin_manager",
    "market_sources",
    "risk_check_specs",
    "strategy_specs",
    "venue_specs",
]
