"""The kill switch over HTTP (operator token: ``ui/operator.py``).

    POST /risk/kill     {"strategyId"?: id, "reason": why, "actor"?: who}
                        -> 200 {"changed": bool, "event": the control.killed event | null,
                                "killSwitches": [...], "breakers": [...]}
    POST /risk/resume   same body -> control.resumed; 409 if that switch is not engaged
    GET  /risk/kill     {"killSwitches": [...], "breakers": [...]} (no token: read only)

``control_gauges`` adds the switches and breakers to ``GET /metrics``, from the Redis
``control`` hash the project stage keeps (a scrape reads no Kafka).

The changes go on ``sep.control`` (``pipeline.control.kill_switch``); the reads come from the
control topic itself, not from the read models, so the answer to a change already holds it.
Without ``actor`` the change is recorded as ``operator@<client address>``: the token says an
operator acted, not which one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.control import kill_switch
from pipeline.control.keys import breaker_key, kill_key
from pipeline.control.state import ControlState
from pipeline.models.base import WireModel
from pipeline.store.control_log import latest_control
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.operator import refused
from ui.services import Services, services_of

log = logging.getLogger(__name__)
MAX_BODY = 4096
TIMEOUT_S = 15


class KillRequest(WireModel):
    """The body (camelCase on the wire, unknown fields refused)."""

    strategy_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    actor: Annotated[str, Field(min_length=1, max_length=200)] | None = None


def state_body(state: ControlState) -> dict[str, object]:
    return {
        "killSwitches": [s.to_wire() for s in kill_switch.switches(state)],
        "breakers": [b.to_wire() for b in kill_switch.breakers(state)],
    }


async def get_kill(request: Request) -> Response:
    kafka = services_of(request.app).settings.kafka
    try:
        state = await asyncio.wait_for(kill_switch.read_state(kafka), TIMEOUT_S)
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"could not read Kafka: {exc!r}"), 503)
    return JSONBody(state_body(state))


async def _body(request: Request) -> KillRequest:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInput([{"path": "body", "message": f"larger than {MAX_BODY} bytes"}])
    try:
        body = KillRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "body") from exc
    if not body.reason.strip():
        raise InvalidInput([{"path": "body.reason", "message": "say why (it is recorded)"}])
    return body


async def _change(request: Request, engage: bool) -> Response:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    body = await _body(request)
    scope = kill_switch.scope_of(body.strategy_id)
    client = request.client.host if request.client else "unknown"
    actor = body.actor or f"operator@{client}"
    kafka = services_of(request.app).settings.kafka
    try:
        if engage:
            event, state = await asyncio.wait_for(
                kill_switch.engage(kafka, scope, actor, body.reason.strip()), TIMEOUT_S
            )
        else:
            event, state = await asyncio.wait_for(
                kill_switch.resume(kafka, scope, actor, body.reason.strip()), TIMEOUT_S
            )
    except kill_switch.NotEngaged as exc:
        return JSONResponse(error_body("not_engaged", str(exc), scope=scope), 409)
    except ValidationError as exc:  # the scope a strategy id makes (its characters)
        raise InvalidInput(
            [{"path": "body.strategyId", "message": e["msg"]} for e in exc.errors()]
        ) from exc
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"not published: {exc!r}"), 503)
    log.warning(
        "kill switch engaged" if engage else "kill switch resumed",
        extra={"scope": scope, "actor": actor, "changed": event is not None},
    )
    return JSONBody(
        {
            "changed": event is not None,
            "event": None if event is None else event.to_wire(),
            **state_body(state),
        }
    )


async def kill(request: Request) -> Response:
    return await _change(request, engage=True)


async def resume(request: Request) -> Response:
    return await _change(request, engage=False)


BREAKER_LEVEL = {"closed": 0, "half_open": 1, "open": 2}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def control_gauges(services: Services) -> list[str]:
    """Prometheus lines: each kill switch ever used, each venue breaker ever changed."""
    latest = await latest_control(services.redis, services.settings.redis_prefix)
    kill_prefix, breaker_prefix = kill_key(""), breaker_key("")
    lines = [
        "# HELP sep_kill_switch_engaged 1 while the kill switch of a scope is engaged.",
        "# TYPE sep_kill_switch_engaged gauge",
    ]
    for key, event in sorted(latest.items()):
        if key.startswith(kill_prefix):
            engaged = int(event.get("topic") == "control.killed")
            lines.append(
                f'sep_kill_switch_engaged{{scope="{_label(key[len(kill_prefix) :])}"}} {engaged}'
            )
    lines += [
        "# HELP sep_venue_breaker_state A venue's circuit breaker: 0 closed, 1 half-open, 2 open.",
        "# TYPE sep_venue_breaker_state gauge",
    ]
    trips = []
    for key, event in sorted(latest.items()):
        if key.startswith(breaker_prefix):
            payload = event.get("payload", {})
            venue = _label(key[len(breaker_prefix) :])
            level = BREAKER_LEVEL.get(str(payload.get("state")), 0)
            lines.append(f'sep_venue_breaker_state{{venue="{venue}"}} {level}')
            trips.append(
                f'sep_venue_breaker_trips_total{{venue="{venue}"}} {int(payload.get("trips", 0))}'
            )
    lines += [
        "# HELP sep_venue_breaker_trips_total Times a venue's breaker has opened.",
        "# TYPE sep_venue_breaker_trips_total counter",
        *trips,
    ]
    return lines
