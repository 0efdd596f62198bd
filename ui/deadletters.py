"""``GET /deadletters``: the newest dead-lettered records, with why and where from, filtered
by the kind of reason (``?kind=``) or text in the reason or the bytes' preview (``?q=``).  See
``pipeline.store.deadletters`` for how they are read (no consumer group, bounded).  Each says
whether it may be re-driven (and why not) and, if it was, the re-drive's event.

``POST /deadletters/{partition}/{offset}/redrive`` (operator token; body ``{"operator": who,
"note": why}``) puts one back on its original topic, once (``pipeline.store.redrive``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.store.deadletters import MAX_LIMIT, read_recent
from pipeline.store.redrive import RedriveError
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.operator import refused
from ui.services import services_of

log = logging.getLogger(__name__)
MAX_BODY = 4096
MAX_PARTITION = 1 << 16
MAX_OFFSET = (1 << 63) - 1
_STATUS = {"not_found": 404, "not_redrivable": 409, "already_redriven": 409}


class DeadLetterQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 200


async def list_dead_letters(request: Request) -> Response:
    try:
        query = DeadLetterQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "query") from exc
    services = services_of(request.app)
    try:
        letters, held = await asyncio.wait_for(
            read_recent(services.settings.kafka, query.limit), 10
        )
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"could not read Kafka: {exc!r}"), 503)
    kinds: dict[str, int] = {}
    for letter in letters:
        kinds[letter.kind] = kinds.get(letter.kind, 0) + 1
    needle = query.q.casefold() if query.q else None
    chosen = [
        d
        for d in letters
        if (query.kind is None or d.kind == query.kind)
        and (
            needle is None
            or needle in d.reason.casefold()
            or needle in d.value.decode("utf-8", "replace").casefold()
        )
    ]
    redriver = services.redriver
    try:
        done = await redriver.redriven([(d.partition, d.offset) for d in chosen])
    except Exception as exc:  # PostgreSQL away: the letters are still worth showing
        log.warning("could not read re-drives", extra={"error": repr(exc)})
        done = {}
    shown = [
        d.document()
        | {
            "redrivable": redriver.why_not(d) is None,
            "notRedrivable": redriver.why_not(d),
            "redriven": done.get((d.partition, d.offset)),
        }
        for d in chosen
    ]
    return JSONBody(
        {
            "items": shown,
            "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "read": len(letters),
            "held": held,
        }
    )


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: Annotated[str, Field(min_length=1, max_length=64)]
    """Who re-drives (recorded with the event)."""
    note: Annotated[str, Field(max_length=500)] = ""
    """Why: what changed since it failed (recorded with the event)."""


async def redrive_dead_letter(request: Request) -> Response:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    partition, offset = request.path_params["partition"], request.path_params["offset"]
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInput([{"path": "body", "message": f"larger than {MAX_BODY} bytes"}])
    try:
        body = RedriveRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "body") from exc
    if partition >= MAX_PARTITION or offset > MAX_OFFSET:
        return JSONResponse(error_body("not_found", "no such dead letter"), 404)
    try:
        done = await asyncio.wait_for(
            services_of(request.app).redriver.redrive(
                partition, offset, operator=body.operator, note=body.note
            ),
            30,
        )
    except RedriveError as exc:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.detail), _STATUS.get(exc.code, 409)
        )
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"not re-driven: {exc!r}"), 503)
    log.info(
        "dead letter re-driven", extra={"event": done.event["eventId"], "operator": body.operator}
    )
    return JSONBody(done.event)
