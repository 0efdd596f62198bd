"""``GET /deadletters``: the newest dead-lettered records, with why and where from, filtered
by the kind of reason (``?kind=``) or text in the reason or the bytes' preview (``?q=``).  See
``pipeline.store.deadletters`` for how they are read (no consumer group, bounded)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.store.deadletters import MAX_LIMIT, read_recent
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.services import services_of


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
        letters, held = await asyncio.wait_for(read_recent(services.settings.kafka, query.limit),
                                               10)
    except Exception as exc:
        return JSONResponse(error_body("unavailable", f"could not read Kafka: {exc!r}"), 503)
    kinds: dict[str, int] = {}
    for letter in letters:
        kinds[letter.kind] = kinds.get(letter.kind, 0) + 1
    needle = query.q.casefold() if query.q else None
    shown = [d.document() for d in letters
             if (query.kind is None or d.kind == query.kind)
             and (needle is None or needle in d.reason.casefold()
                  or needle in d.value.decode("utf-8", "replace").casefold())]
    return JSONBody({"items": shown, "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
                     "read": len(letters), "held": held})
