"""The risk picture an operator reads (``GET /risk``, ``sep risk show``), assembled from what
the platform stores: the control plane's latest change per key (the Redis ``control`` hash
project writes) and the risk engine's usage report (``pipeline.risk.usage``).  Pure.

    {"quoteAsset": "USDC",
     "global": {"scope": "global", "state": "NORMAL", "killed": {...} | null,
                "change": {...} | null,
                "thresholds": {...}, "marks": {...} | null},
     "strategies": [{"strategyId": "dca", "scope": "strategy:dca", "state": "REDUCING",
                     "killed": {...} | null,  the engaged kill switch covering it, if any
                     "change": {...}, "limits": {...}, "overrides": {...},
                     "usage": {...} | null, "marks": {...} | null}],
     "killSwitch": {"global": {...} | null, "strategies": {"dca": {...}}},
                  each the scope's last change, with "engaged": true | false
     "breakers": {"sim": {...}},        venue circuit breakers (``breaker/<venue>``), as stored
     "usageAt": ms | null, "marks": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.control.keys import ALL_STRATEGIES, GLOBAL, strategy_scope
from pipeline.risk.limits import resolve, thresholds
from pipeline.topology.models import Topology


def _change(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored control event, as the operator reads it: its payload, seq and time."""
    if event is None:
        return None
    return {
        **event.get("payload", {}),
        "type": event.get("topic"),
        "seq": event.get("seq"),
        "at": event.get("timestamp"),
    }


def _kill(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A kill switch's last change, and whether it leaves the switch engaged."""
    change = _change(event)
    return None if change is None else {**change, "engaged": change["type"] == "control.killed"}


def risk_status(
    topology: Topology,
    control: Mapping[str, Mapping[str, Any]],
    usage: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``control``: control key -> stored event (wire JSON); ``usage``: the engine's report."""
    risk = topology.risk
    used = dict((usage or {}).get("strategies", {}))
    scopes = dict((usage or {}).get("scopes", {}))
    overrides: dict[str, dict[str, str]] = {}
    for key, event in control.items():
        if key.startswith("limits/") and event.get("topic") == "risk.limits_changed":
            overrides[key.removeprefix("limits/")] = dict(event["payload"].get("limits", {}))
    names = set(used) | set(risk.strategies) | {s for s in overrides if s != ALL_STRATEGIES}
    names |= {k.removeprefix("risk/strategy:") for k in control if k.startswith("risk/strategy:")}
    global_kill = _kill(control.get(f"kill/{GLOBAL}"))
    kills = {
        key.removeprefix("kill/strategy:"): _kill(event)
        for key, event in control.items()
        if key.startswith("kill/strategy:")
    }
    # A strategy with an engaged switch of its own is listed even if it never traded: the
    # operator looks for it here.  The kill is separate from the breaker state (a killed
    # strategy may be NORMAL): the same switch ``ControlState.killed`` obeys, global first.
    names |= {name for name, kill in kills.items() if kill is not None and kill["engaged"]}
    strategies = []
    for name in sorted(names):
        scope = strategy_scope(name)
        change = _change(control.get(f"risk/{scope}"))
        merged = {**overrides.get(ALL_STRATEGIES, {}), **overrides.get(name, {})}
        limits = resolve(risk, name, merged)
        strategies.append(
            {
                "strategyId": name,
                "scope": scope,
                "state": (change or {}).get("state", "NORMAL"),
                "killed": next(
                    (k for k in (global_kill, kills.get(name)) if k is not None and k["engaged"]),
                    None,
                ),
                "change": change,
                "limits": {k: str(v) for k, v in limits.model_dump(exclude_none=True).items()},
                "overrides": merged,
                "usage": (used.get(name) or {}).get("usage"),
                "marks": scopes.get(scope),
            }
        )
    global_change = _change(control.get(f"risk/{GLOBAL}"))
    return {
        "quoteAsset": risk.quote_asset,
        "global": {
            "scope": GLOBAL,
            "state": (global_change or {}).get("state", "NORMAL"),
            "killed": global_kill if global_kill is not None and global_kill["engaged"] else None,
            "change": global_change,
            "thresholds": thresholds(risk.global_),
            "marks": scopes.get(GLOBAL),
        },
        "strategies": strategies,
        "killSwitch": {
            "global": global_kill,
            "strategies": kills,
        },
        "breakers": {
            key.removeprefix("breaker/"): _change(event)
            for key, event in control.items()
            if key.startswith("breaker/")
        },
        "usageAt": (usage or {}).get("at"),
        "marks": dict((usage or {}).get("marks", {})),
    }
