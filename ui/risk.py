"""``GET /risk``: the risk picture; ``PUT /risk/limits/{strategy}`` and ``POST /risk/reset``:
the operator's risk actions (operator token).

``GET /risk`` reads what the platform stores: the control plane's latest change per key (the
Redis ``control`` hash project writes: breakers per scope, limits overrides, kill switches,
venue breakers) and the risk engine's usage report (``risk:usage``, written by the
validating workers).  Shape: ``pipeline.risk.status``.

The actions publish one event each on the control topic (``pipeline.risk.actions``), with the
``actor`` and ``reason`` given: ``risk.limits_changed`` (the rules given on top of the
strategy's current overrides; ``clear`` drops those first; ``none`` switches a rule off),
``risk.state_changed`` back to NORMAL (a new epoch).  Workers obey within a second.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.models.control import Actor, Reason
from pipeline.risk import actions
from pipeline.risk.limits import LimitError
from pipeline.risk.status import risk_status
from pipeline.store import risk_usage
from pipeline.store.control_log import latest_control
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.operator import refused
from ui.services import services_of

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
PUBLISH_TIMEOUT_S = 30.0
StrategyId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


async def get_risk(request: Request) -> Response:
    services = services_of(request.app)
    prefix = services.settings.redis_prefix
    control = await latest_control(services.redis, prefix)
    usage = await risk_usage.read(services.redis, prefix)
    return JSONBody(risk_status(services.topology, control, usage))


class LimitsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limits: dict[str, Annotated[str, Field(max_length=64)]]
    """Rule -> value (a decimal string; ``none`` switches the rule off)."""
    reason: Reason
    actor: Actor = "api"
    clear: bool = False
    """Drop the strategy's other run-time overrides first."""


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Annotated[str, Field(max_length=140)]
    """``global`` or ``strategy:<id>``."""
    reason: Reason
    actor: Actor = "api"


async def _body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInput([{"path": "body", "message": f"larger than {MAX_BODY} bytes"}])
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "body") from exc


async def put_limits(request: Request) -> Response:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    strategy = request.path_params["strategy"]
    body = await _body(request, LimitsRequest)
    assert isinstance(body, LimitsRequest)
    if not strategy or len(strategy) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in strategy):
        raise InvalidInput([{"path": "strategy", "message": "1 to 128 printable characters"}])
    services = services_of(request.app)
    try:
        event = await asyncio.wait_for(
            actions.set_limits(
                services.settings.kafka,
                strategy,
                body.limits,
                actor=body.actor,
                reason=body.reason,
                clear=body.clear,
            ),
            PUBLISH_TIMEOUT_S,
        )
    except LimitError as exc:
        raise InvalidInput([{"path": f"body.limits.{exc.rule}", "message": str(exc)}]) from exc
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"not published: {exc!r}"), 503)
    log.info("risk limits changed", extra={"key": event.correlation_id, "actor": body.actor})
    return JSONBody(event.to_wire())


async def post_reset(request: Request) -> Response:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    body = await _body(request, ResetRequest)
    assert isinstance(body, ResetRequest)
    try:
        actions.check_scope(body.scope)
    except actions.ScopeError as exc:
        raise InvalidInput([{"path": "body.scope", "message": str(exc)}]) from exc
    services = services_of(request.app)
    try:
        event = await asyncio.wait_for(
            actions.reset(
                services.settings.kafka, body.scope, actor=body.actor, reason=body.reason
            ),
            PUBLISH_TIMEOUT_S,
        )
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"not published: {exc!r}"), 503)
    log.info("risk breaker reset", extra={"key": event.correlation_id, "actor": body.actor})
    return JSONBody(event.to_wire())
