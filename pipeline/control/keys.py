"""Control keys: what a record on ``sep.control`` controls (compaction keeps the latest per key).

kill/global                   the global kill switch
kill/strategy:<strategy id>   one strategy's kill switch
limits/<strategy id>          a strategy's risk limits (``limits/*``: every strategy's)
strategy/<strategy id>        a strategy enabled, disabled or reconfigured
breaker/<venue>               a venue's circuit breaker (pipeline.breakers)
risk/<scope>                  a risk breaker's state (``global`` or ``strategy:<id>``)
"""

from __future__ import annotations

from typing import Final

TOPIC: Final = "sep.control"
GLOBAL: Final = "global"
ALL_STRATEGIES: Final = "*"


def strategy_scope(strategy_id: str) -> str:
    return f"strategy:{strategy_id}"


def kill_key(scope: str) -> str:
    """``scope`` is ``global`` or ``strategy:<id>`` (``strategy_scope``)."""
    return f"kill/{scope}"


def limits_key(strategy_id: str) -> str:
    return f"limits/{strategy_id}"


def strategy_key(strategy_id: str) -> str:
    return f"strategy/{strategy_id}"


def breaker_key(venue: str) -> str:
    return f"breaker/{venue}"


def risk_key(scope: str) -> str:
    """``scope`` is ``global`` or ``strategy:<id>`` (``strategy_scope``)."""
    return f"risk/{scope}"
