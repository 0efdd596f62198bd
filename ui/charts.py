"""``GET /charts/prices``, ``/charts/pnl``, ``/charts/states``: the charts' history, computed
from the event store (``pipeline.store.history``), so a replay cannot change a point.

The page draws the history once, then follows ``WS /stream``: a change tells it something
moved, and it asks again with ``since`` (the last second it drew) for the points from there on.
One code path makes every point, live or on reload, so a refresh draws the same picture.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.store.history import since
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.services import services_of

Name = Annotated[str, Field(min_length=1, max_length=128)]
Since = Annotated[int, Field(ge=0, le=10**11)]
TIMEOUT_S = 20


class PriceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    market: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[^/]+/[^/]+$")] | None = (
        None
    )
    venue: Name | None = None
    since: Since | None = None


class PnlQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    strategy: Name | None = None
    since: Since | None = None


class StatesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket: Annotated[int, Field(ge=1, le=86400)] | None = None
    since: Since | None = None


Q = TypeVar("Q", bound=BaseModel)


def _parse(model: type[Q], request: Request) -> Q:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "query") from exc


def _unavailable(exc: Exception) -> Response:
    return JSONResponse(error_body("unavailable", f"could not read the event store: {exc!r}"), 503)


async def prices(request: Request) -> Response:
    query = _parse(PriceQuery, request)
    try:
        body = await asyncio.wait_for(
            services_of(request.app).history.prices(query.market, query.venue), TIMEOUT_S
        )
    except Exception as exc:
        return _unavailable(exc)
    body["points"] = since(body["points"], query.since)
    body["fills"] = since(body["fills"], query.since)
    return JSONBody(body)


async def pnl(request: Request) -> Response:
    query = _parse(PnlQuery, request)
    try:
        body = await asyncio.wait_for(
            services_of(request.app).history.pnl(query.strategy), TIMEOUT_S
        )
    except Exception as exc:
        return _unavailable(exc)
    body["points"] = since(body["points"], query.since)
    return JSONBody(body)


async def states(request: Request) -> Response:
    query = _parse(StatesQuery, request)
    try:
        body = await asyncio.wait_for(
            services_of(request.app).history.states(query.bucket), TIMEOUT_S
        )
    except Exception as exc:
        return _unavailable(exc)
    body["points"] = since(body["points"], query.since)
    return JSONBody(body)
