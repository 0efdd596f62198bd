"""REST handlers: submit intents, and read the read models and the event store.

Money stays a decimal string end to end (the read models store the wire strings).
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.client import submit_once
from pipeline.models.intent import ExecutionStyle, IntentSubmission
from pipeline.stages.base import now_ms
from pipeline.status import STATE_ORDER
from pipeline.store.eventstore import StoredEvent
from ui.errors import InvalidInput, error_body, not_found
from ui.services import services_of

MAX_BODY = 64 * 1024


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class IntentQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: Literal[STATE_ORDER] | None = None  # type: ignore[valid-type]  # a tuple of names
    strategy: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class PositionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    strategy: Annotated[str, Field(min_length=1, max_length=128)] | None = None


Q = TypeVar("Q", bound=BaseModel)


def _query(model: type[Q], request: Request) -> Q:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "query") from exc


def _plausible_id(text: str) -> bool:
    # Ids go into Redis keys and SQL parameters: PostgreSQL refuses NUL in text, so an id that
    # could never exist is answered 404 here rather than failing there.
    return 0 < len(text) <= 200 and not any(unicodedata.category(c) == "Cc" for c in text)


def event_document(e: StoredEvent) -> dict[str, Any]:
    return {
        "eventId": e.event_id,
        "timestamp": e.time.isoformat(),
        "topic": e.topic,
        "correlationId": e.correlation_id,
        "causationId": e.causation_id,
        "seq": e.seq,
        "version": e.version,
        "payload": e.payload,
    }


# ----------------------------------------------------------------------------- submit


async def submit_intent(request: Request) -> Response:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInput([{"path": "body", "message": f"larger than {MAX_BODY} bytes"}])
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput([{"path": "body", "message": f"not JSON: {exc}"}]) from exc
    try:
        intent = IntentSubmission.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from exc
    # The id ingest assigns derives from (record timestamp, strategy, client id): give every
    # submission a client id, and choose the record's timestamp here, so the id is known now.
    if intent.client_intent_id is None:
        intent = intent.model_copy(update={"client_intent_id": f"api-{uuid.uuid4().hex[:16]}"})
    services = services_of(request.app)
    try:
        producer = await services.producer()
    except Exception as exc:  # the broker is away: the client may retry, nothing was taken
        return JSONResponse(error_body("unavailable", f"could not reach Kafka: {exc!r}"), 503)
    try:
        # Claims (strategyId, clientIntentId) as ingest will, then produces; a duplicate is
        # answered with the id of the intent that has the key, and not produced.
        submitted = await submit_once(producer, services.dedupe, intent, timestamp_ms=now_ms())
    except RedisError as exc:
        return JSONResponse(error_body("unavailable", f"could not reach Redis: {exc!r}"), 503)
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"could not reach Kafka: {exc!r}"), 503)
    intent_id = submitted.intent_id
    status, code = ("duplicate", 200) if submitted.duplicate else ("submitted", 202)
    return JSONBody(
        {"intentId": intent_id, "clientIntentId": intent.client_intent_id, "status": status},
        code,
        headers={"Location": f"/intents/{intent_id}"},
    )


# ----------------------------------------------------------------------------- reads


async def list_intents(request: Request) -> Response:
    query = _query(IntentQuery, request)
    views = services_of(request.app).views
    head = await views.stream_head()
    page = await views.intents(
        state=query.state, strategy=query.strategy, limit=query.limit, offset=query.offset
    )
    return JSONBody(
        {
            "items": page.items,
            "total": page.total,
            "limit": page.limit,
            "offset": page.offset,
            "streamId": head,
        }
    )


async def get_intent(request: Request) -> Response:
    intent_id = request.path_params["intent_id"]
    if not _plausible_id(intent_id):
        return not_found(f"intent {intent_id!r}")
    services = services_of(request.app)
    head = await services.views.stream_head()  # first: a change after it will be replayed
    view = await services.views.intent(intent_id)
    events = await services.store.events_of(intent_id)
    if view is None and not events:
        return not_found(f"intent {intent_id!r}")
    plan = await services.views.plan(view["planId"]) if view and "planId" in view else None
    return JSONBody(
        {
            "intent": view,
            "plan": plan,
            "events": [event_document(e) for e in events],
            "streamId": head,
        }
    )


async def get_plan(request: Request) -> Response:
    plan_id = request.path_params["plan_id"]
    plan = await services_of(request.app).views.plan(plan_id) if _plausible_id(plan_id) else None
    return JSONBody(plan) if plan is not None else not_found(f"plan {plan_id!r}")


async def list_positions(request: Request) -> Response:
    query = _query(PositionQuery, request)
    return JSONBody({"positions": await services_of(request.app).views.positions(query.strategy)})


async def get_stats(request: Request) -> Response:
    views = services_of(request.app).views
    head = await views.stream_head()
    return JSONBody(await views.stats() | {"streamId": head})


async def list_assets(request: Request) -> Response:
    topology = services_of(request.app).topology
    return JSONBody(
        {
            "assets": [a.to_wire() for a in topology.assets],
            "quoteAsset": topology.risk.quote_asset,
            "styles": [s.value for s in ExecutionStyle],
        }
    )
