"""The Starlette app: REST API, ``WS /stream``, and the UI's static pages, one explicit route list.

Run it with ``sep up`` (which serves it next to the workers), or on its own:
``uvicorn --factory ui.app:create_app`` with SEP_KAFKA / SEP_POSTGRES / SEP_REDIS set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from pipeline.config import Settings
from pipeline.topology import load_topology
from pipeline.topology.models import Topology
from ui import api, books, charts, deadletters, kill, pipeline, risk, status_page, strategies
from ui.errors import EXCEPTION_HANDLERS
from ui.health import health
from ui.metrics import metrics
from ui.openapi import openapi
from ui.services import Services
from ui.stream import stream_endpoint

STATIC = Path(__file__).with_name("static")


async def page(request: Request) -> Response:
    # One HTML shell for every page; the JS module routes on the path (no build step).
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def home(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=307)


routes = [
    Route("/", home),
    Route("/intents", api.list_intents, methods=["GET"]),
    Route("/intents", api.submit_intent, methods=["POST"]),
    Route("/intents/{intent_id:str}", api.get_intent, methods=["GET"]),
    Route("/plans/{plan_id:str}", api.get_plan, methods=["GET"]),
    Route("/positions", api.list_positions, methods=["GET"]),
    Route("/strategies", strategies.list_strategies, methods=["GET"]),
    Route(
        "/strategies/{strategy_id:str}/{action:str}",
        strategies.change,
        methods=["POST"],
    ),
    Route("/stats", api.get_stats, methods=["GET"]),
    Route("/assets", api.list_assets, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/pipeline", pipeline.get_pipeline, methods=["GET"]),
    Route("/deadletters", deadletters.list_dead_letters, methods=["GET"]),
    Route(
        "/deadletters/{partition:int}/{offset:int}/redrive",
        deadletters.redrive_dead_letter,
        methods=["POST"],
    ),
    Route("/risk", risk.get_risk, methods=["GET"]),
    Route("/risk/limits/{strategy:str}", risk.put_limits, methods=["PUT"]),
    Route("/risk/reset", risk.post_reset, methods=["POST"]),
    Route("/risk/kill", kill.get_kill, methods=["GET"]),
    Route("/risk/kill", kill.kill, methods=["POST"]),
    Route("/risk/resume", kill.resume, methods=["POST"]),
    Route("/charts/prices", charts.prices, methods=["GET"]),
    Route("/charts/pnl", charts.pnl, methods=["GET"]),
    Route("/charts/states", charts.states, methods=["GET"]),
    Route("/books", books.books, methods=["GET"]),
    Route("/venues/fills", books.venue_fills, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    WebSocketRoute("/stream", stream_endpoint),
    WebSocketRoute("/stream/pipeline", pipeline.pipeline_stream),
    Route("/ui/", page),
    Route("/ui/submit", page),
    Route("/ui/intents/{intent_id:str}", page),
    Route("/ui/strategies", page),
    Route("/ui/pipeline", page),
    Route("/ui/deadletters", page),
    Route("/ui/metrics", page),
    Route("/ui/charts", page),
    Route("/ui/books", page),
    Route("/ui/risk", page),
    Route("/status", status_page.status_html),
    Route("/api/status", status_page.status_json),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


def create_app(settings: Settings | None = None, topology: Topology | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings or Settings()
        app.state.topology = topology or load_topology()
        app.state.services = await Services.open(app.state.settings, app.state.topology)
        # Sampling from the start: the pipeline view shows the last minute when first opened.
        app.state.pipeline = pipeline.PipelineSampler(app.state.services)
        await app.state.pipeline.start()
        try:
            yield
        finally:
            await app.state.pipeline.close()
            await app.state.services.close()

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
