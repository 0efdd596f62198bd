"""Strategies in the API: what runs, with which config, what it did; enable, disable, configure.

    GET  /strategies                     every strategy the topology declares, the control plane
                                         names or the read models have seen, with its switch,
                                         config, who changed it last and why, intents, P&L
    POST /strategies/{id}/enable         body {actor, reason, plugin?, config?}
    POST /strategies/{id}/disable        body {actor, reason}
    POST /strategies/{id}/configure      body {actor, reason, config}   (fields to change)

The writes need the operator token (``ui/operator.py``) and publish one event on
``sep.control`` each (``pipeline.strategy_admin``: the whole config in force, validated by the
plugin's model first: a refused config is 422 with its paths, nothing published); the
strategy runner obeys within a second.  The read side is Redis only: the control hash that
project keeps (``pipeline.store.control_log``), the strategies' intent counts and positions.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.control import keys
from pipeline.models.control import KillSwitchChanged, StrategyChanged
from pipeline.models.events import Event
from pipeline.store.control_log import latest_control
from pipeline.strategy_admin import StrategyChangeError, change_strategy, strategy_rows
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.operator import refused
from ui.services import services_of

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
PUBLISH_TIMEOUT_S = 15.0
ACTIONS = ("enable", "disable", "configure")


class StrategyAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: Annotated[str, Field(min_length=1, max_length=200)]
    """Who (kept with the change)."""
    reason: Annotated[str, Field(min_length=1, max_length=2_000)]
    """Why (kept with the change)."""
    plugin: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """enable only: the plugin of a strategy id the topology does not declare."""
    config: dict[str, Any] | None = None
    """Config fields to set (the rest are kept)."""


async def _control(request: Request) -> dict[str, Event]:
    services = services_of(request.app)
    raw = await latest_control(services.redis, services.settings.redis_prefix)
    out: dict[str, Event] = {}
    for key, doc in raw.items():
        try:
            out[key] = Event.model_validate(doc)
        except ValidationError:
            log.warning("unreadable control entry skipped", extra={"key": key})
    return out


def _changes(control: dict[str, Event]) -> dict[str, StrategyChanged]:
    prefix = keys.strategy_key("")
    out: dict[str, StrategyChanged] = {}
    for key, event in control.items():
        if key.startswith(prefix):
            try:
                out[key[len(prefix) :]] = event.payload_as(StrategyChanged)
            except ValidationError:
                continue
    return out


def _killed(control: dict[str, Event], strategy_id: str) -> str | None:
    """The scope of the engaged kill switch that covers the strategy, if any."""
    for scope in (keys.GLOBAL, keys.strategy_scope(strategy_id)):
        event = control.get(keys.kill_key(scope))
        if event is not None and event.topic == "control.killed":
            return event.payload_as(KillSwitchChanged).scope
    return None


async def list_strategies(request: Request) -> Response:
    services = services_of(request.app)
    control = await _control(request)
    rows = {r["strategyId"]: r for r in strategy_rows(services.topology, _changes(control))}
    seen = {s["strategyId"]: s["intents"] for s in await services.views.strategies()}
    positions = {p["strategyId"]: p for p in await services.views.positions()}
    out = []
    for strategy_id in sorted(set(rows) | set(seen)):
        row = rows.get(strategy_id) or {
            # Seen in intents but neither declared nor switched: a producer of its own.
            "strategyId": strategy_id,
            "plugin": None,
            "enabled": None,
            "source": "external",
            "config": {},
            "changedBy": None,
            "reason": None,
        }
        change = control.get(keys.strategy_key(strategy_id))
        position = positions.get(strategy_id)
        realised = Decimal(position["realisedPnl"]) if position else Decimal(0)
        unrealised = Decimal(position["unrealisedPnl"]) if position else Decimal(0)
        out.append(
            {
                **row,
                "changedAt": change.timestamp.isoformat() if change is not None else None,
                "killed": _killed(control, strategy_id),
                "intents": seen.get(strategy_id, 0),
                "quoteAsset": services.topology.risk.quote_asset,
                "realisedPnl": _plain(realised),
                "unrealisedPnl": _plain(unrealised),
                "assets": position["assets"] if position else [],
            }
        )
    return JSONBody({"strategies": out})


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


async def change(request: Request) -> Response:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    action = request.path_params["action"]
    strategy_id = request.path_params["strategy_id"]
    if action not in ACTIONS:
        return JSONResponse(error_body("not_found", f"no action {action!r}: {ACTIONS}"), 404)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInput([{"path": "body", "message": f"larger than {MAX_BODY} bytes"}])
    try:
        body = StrategyAction.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "body") from exc
    if action == "configure" and not body.config:
        raise InvalidInput([{"path": "body.config", "message": "give the fields to change"}])
    if action != "enable" and body.plugin is not None:
        raise InvalidInput([{"path": "body.plugin", "message": "only enable names a plugin"}])
    services = services_of(request.app)
    try:
        event = await asyncio.wait_for(
            change_strategy(
                services.settings.kafka,
                services.topology,
                action,
                strategy_id,
                actor=body.actor,
                reason=body.reason,
                plugin=body.plugin,
                config=body.config if action != "disable" else None,
            ),
            PUBLISH_TIMEOUT_S,
        )
    except StrategyChangeError as exc:
        raise InvalidInput([{"path": p, "message": m} for p, m in exc.problems]) from exc
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"not changed: {exc!r}"), 503)
    log.info(
        "strategy changed",
        extra={"strategy": strategy_id, "type": event.topic, "actor": body.actor},
    )
    return JSONBody(event.to_wire(), status_code=202)
