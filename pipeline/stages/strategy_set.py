"""Which strategies should run, with which plugin and config: the topology, then the control plane.

Pure (no I/O): the strategy runner asks it whenever the control plane moved.

    topology.yaml  plugins.strategies.<id>: {enabled, plugin?, config}
    sep.control    strategy/<id>: StrategyChanged{enabled, plugin?, config}   (latest per key)
        ──► {strategy id: Wanted(plugin, config, enabled, source)}

A run-time change wins over the topology for its strategy: ``enabled`` as it says; ``plugin``
when it names one (else the topology's, else the id itself); ``config`` when non-empty, as the
*whole* config (``sep strategy configure`` merges and publishes the result; compaction keeps
only the latest change per key, so every change carries the config in force), else the
topology's.  A strategy the topology does not declare can be enabled at run time if its
change names a plugin (or its id is a plugin's name) and a config that plugin accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.control import keys
from pipeline.models.control import StrategyChanged
from pipeline.topology.models import Topology

STRATEGY_PREFIX = keys.strategy_key("")


@dataclass(frozen=True)
class Wanted:
    strategy_id: str
    plugin: str
    config: Mapping[str, Any]
    enabled: bool
    source: Literal["topology", "control"]
    """Where ``enabled``/``config`` come from: the topology, or a run-time change."""
    changed_by: str | None = None
    """Who made the run-time change (``None``: the topology)."""
    reason: str | None = None


def strategy_ids_in(control_keys: Iterable[str]) -> list[str]:
    """The strategy ids among control keys (``strategy/<id>``)."""
    return [k[len(STRATEGY_PREFIX) :] for k in control_keys if k.startswith(STRATEGY_PREFIX)]


def wanted_strategies(
    topology: Topology, changes: Mapping[str, StrategyChanged]
) -> dict[str, Wanted]:
    """Every strategy the topology declares or a change names, enabled or not."""
    out: dict[str, Wanted] = {}
    for strategy_id, use in topology.plugins.strategies.items():
        out[strategy_id] = Wanted(
            strategy_id, use.plugin_name(strategy_id), use.config, use.enabled, "topology"
        )
    for strategy_id, change in changes.items():
        declared = out.get(strategy_id)
        plugin = change.plugin or (declared.plugin if declared else strategy_id)
        config: Mapping[str, Any] = change.config or (declared.config if declared else {})
        out[strategy_id] = Wanted(
            strategy_id, plugin, config, change.enabled, "control", change.actor, change.reason
        )
    return out
