"""Run-time strategy switches: what ``sep strategy`` and ``POST /strategies/{id}/...`` publish.

Each change is one event on ``sep.control`` (key ``strategy/<id>``), with who and why, that the
strategy runner obeys within a second (``pipeline.stages.strategy_runner``) and project files
in ``operator_events``:

    enable    strategy.enabled     {enabled: true,  plugin, config: the config in force}
    disable   strategy.disabled    {enabled: false, plugin, config: the config in force}
    configure strategy.configured  {enabled: as it was, plugin, config: old config + changes}

Compaction keeps only the latest change per key, so every change carries the whole config in
force (the topology's, with every run-time change merged in), never a difference; the
strategy runner takes a non-empty config as the whole config (``strategy_set``).  The new
config is validated by the plugin's own model *before* anything is published, so a typo is
refused here with its YAML-like path, not discovered by the runner.

``strategy_rows`` is the listing: the topology's strategies and the run-time changes on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pluggy
from pydantic import ValidationError

from pipeline.control import keys
from pipeline.control.feed import ControlFeed
from pipeline.control.publish import publish_change
from pipeline.control.state import ControlView
from pipeline.models.control import StrategyChanged
from pipeline.models.events import Event
from pipeline.plugins.manager import make_plugin_manager, strategy_specs
from pipeline.stages.strategy_set import Wanted, strategy_ids_in, wanted_strategies
from pipeline.topology.loader import yaml_path
from pipeline.topology.models import Topology

Action = Literal["enable", "disable", "configure"]
EVENT_TYPES: dict[Action, str] = {
    "enable": "strategy.enabled",
    "disable": "strategy.disabled",
    "configure": "strategy.configured",
}


class StrategyChangeError(ValueError):
    """A change that cannot be made: unknown strategy or plugin, or a config it refuses.

    ``problems`` holds (path, message), the path as in ``topology.yaml``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


@dataclass(frozen=True)
class PlannedChange:
    key: str
    event_type: str
    payload: StrategyChanged


def changes_in(control: ControlView | None) -> dict[str, StrategyChanged]:
    """Every run-time strategy change the control plane holds, by strategy id."""
    if control is None:
        return {}
    out: dict[str, StrategyChanged] = {}
    for strategy_id in strategy_ids_in(key for key, _ in control.items()):
        change = control.strategy(strategy_id)
        if change is not None:
            out[strategy_id] = change
    return out


def plan_change(
    topology: Topology,
    current: Mapping[str, StrategyChanged],
    action: Action,
    strategy_id: str,
    *,
    actor: str,
    reason: str,
    plugin: str | None = None,
    config: Mapping[str, Any] | None = None,
    pm: pluggy.PluginManager | None = None,
) -> PlannedChange:
    """The event that makes the change (pure but for the plugin manager's config models)."""
    known = wanted_strategies(topology, current)
    before: Wanted | None = known.get(strategy_id)
    path = f"plugins.strategies.{strategy_id}"
    if before is None and (action != "enable" or plugin is None):
        hint = "" if action != "enable" else " (to add one, name its plugin)"
        raise StrategyChangeError(
            [(path, f"no strategy {strategy_id!r}{hint}; known: {sorted(known)}")]
        )
    name = plugin or (before.plugin if before else strategy_id)
    merged = dict(before.config) if before is not None and before.plugin == name else {}
    merged.update(config or {})
    enabled = {"enable": True, "disable": False}.get(
        action, before.enabled if before is not None else False
    )
    if action != "disable":
        _validate(topology, path, name, merged, pm)
    payload = StrategyChanged(
        strategy_id=strategy_id,
        enabled=enabled,
        plugin=name,
        config=merged,
        actor=actor,
        reason=reason,
    )
    return PlannedChange(keys.strategy_key(strategy_id), EVENT_TYPES[action], payload)


def _validate(
    topology: Topology,
    path: str,
    plugin: str,
    config: Mapping[str, Any],
    pm: pluggy.PluginManager | None,
) -> None:
    specs = strategy_specs(pm or make_plugin_manager())
    spec = specs.get(plugin)
    if spec is None:
        raise StrategyChangeError(
            [
                (
                    f"{path}.plugin",
                    f"no installed plugin provides strategy {plugin!r}: {sorted(specs)}",
                )
            ]
        )
    assets = {a.symbol: a for a in topology.assets}
    try:
        spec.config_model.model_validate(dict(config), context={"assets": assets})
    except ValidationError as exc:
        raise StrategyChangeError(
            [
                (f"{path}.config.{yaml_path(e['loc'], dict(config))}".rstrip("."), e["msg"])
                for e in exc.errors()
            ]
        ) from exc


async def change_strategy(
    bootstrap: str,
    topology: Topology,
    action: Action,
    strategy_id: str,
    *,
    actor: str,
    reason: str,
    plugin: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Event:
    """Read the control plane, plan the change, publish it (acks=all); its event."""
    feed = ControlFeed(bootstrap)
    await feed.start()
    try:
        planned = plan_change(
            topology,
            changes_in(feed.state),
            action,
            strategy_id,
            actor=actor,
            reason=reason,
            plugin=plugin,
            config=config,
        )
        return await publish_change(
            bootstrap, planned.key, planned.event_type, planned.payload, feed=feed
        )
    finally:
        await feed.stop()


def strategy_rows(
    topology: Topology, current: Mapping[str, StrategyChanged]
) -> list[dict[str, Any]]:
    """One row per strategy (camelCase, for the API and ``sep strategy list``)."""
    return [
        {
            "strategyId": w.strategy_id,
            "plugin": w.plugin,
            "enabled": w.enabled,
            "source": w.source,
            "config": dict(w.config),
            "changedBy": w.changed_by,
            "reason": w.reason,
        }
        for w in sorted(wanted_strategies(topology, current).values(), key=lambda w: w.strategy_id)
    ]
