"""``GET /books``: a market's depth across book venues; ``GET /venues/fills``: fills per venue
with their fees.

Depth comes from ``sep.market.books`` as the planners see it: the app follows the topic with
the planners' own ``BookFeed`` (replicas with gap detection, one aggregated book per pair),
started on the first request rather than at start-up, so the rest of the read side works
while the broker is away (this answers 503 then).  The page asks again every second: the
answer is the book as the feed holds it now (``pipeline.market.depth``).

Fills per venue are computed from the event store (``pipeline.store.venue_fills``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.market.depth import MAX_LEVELS, depth_document, markets
from pipeline.store.venue_fills import per_venue
from ui.api import JSONBody
from ui.errors import InvalidInput, error_body
from ui.services import services_of

TIMEOUT_S = 20


class BooksQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    market: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[^/]+/[^/]+$")] | None = (
        None
    )
    levels: Annotated[int, Field(ge=1, le=MAX_LEVELS)] = 50


async def books(request: Request) -> Response:
    try:
        query = BooksQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, "query") from exc
    try:
        feed = await asyncio.wait_for(services_of(request.app).book_feed(), TIMEOUT_S)
    except Exception as exc:  # the broker is away: the page says so and asks again
        return JSONResponse(error_body("unavailable", f"could not follow the books: {exc!r}"), 503)
    listed = markets(feed.board)
    chosen = query.market or (listed[0]["market"] if listed else None)
    doc = None
    if chosen is not None:
        base, quote = chosen.split("/", 1)
        doc = depth_document(feed.board, base, quote, query.levels)
    return JSONBody(
        {
            "markets": listed,
            "market": chosen,
            "book": doc,
            "updates": feed.updates,
            "gaps": feed.board.gaps,
        }
    )


async def venue_fills(request: Request) -> Response:
    store = services_of(request.app).store
    try:
        payloads = await asyncio.wait_for(store.payloads_of("exec.step_filled"), TIMEOUT_S)
    except Exception as exc:
        return JSONResponse(
            error_body("unavailable", f"could not read the event store: {exc!r}"), 503
        )
    return JSONBody({"venues": per_venue(payloads)})
