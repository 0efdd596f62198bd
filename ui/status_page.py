"""A minimal status page: intents per state and events stored, refreshed every 2 s.

Served at ``/status`` by the full app (``ui.app``); ``create_app`` here still builds it alone.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from pipeline.config import Settings
from pipeline.status import collect_status
from pipeline.topology import load_topology

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>sep status</title>
<style>body{{background:#0f1216;color:#d8dee9;font:14px/1.5 system-ui,sans-serif;margin:2rem}}
table{{border-collapse:collapse;min-width:22rem}}td,th{{padding:.25rem .75rem;text-align:left;
border-bottom:1px solid #232a33}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}
h1{{font-size:1.1rem}}small{{color:#7b8794}}</style>
<meta http-equiv="refresh" content="2"></head><body>
<h1>Strategy Execution Platform</h1><small>refreshes every 2 s</small>
<h2>intents: {total} ({active} active)</h2><table>{states}</table>
<h2>events stored</h2><table>{events}</table></body></html>"""


def _rows(counts: dict[str, int]) -> str:
    return "".join(
        f"<tr><td>{html.escape(k)}</td><td class=n>{v}</td></tr>" for k, v in counts.items()
    )


async def status_json(request: Request) -> JSONResponse:
    status = await collect_status(request.app.state.settings, request.app.state.topology)
    return JSONResponse(status)


async def status_html(request: Request) -> HTMLResponse:
    s = await collect_status(request.app.state.settings, request.app.state.topology)
    return HTMLResponse(
        PAGE.format(
            total=s["intents"],
            active=s["active"],
            states=_rows(s["states"]),
            events=_rows(s["events"]),
        )
    )


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


routes = [
    Route("/", status_html),
    Route("/api/status", status_json),
    Route("/health", health),
]


def create_app(settings: Settings | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings or Settings()
        app.state.topology = load_topology()
        yield

    return Starlette(routes=routes, lifespan=lifespan)
