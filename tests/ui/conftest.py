"""A private event store database and read-model namespace per test module, and the app."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from pipeline.config import Settings
from pipeline.devstack.uniswap import DevChain
from pipeline.runtime.topics import ensure_topics
from pipeline.store.eventstore import EventStore
from pipeline.topology import load_topology
from tests.ui.chromium import CHROMIUM
from tests.ui.hostile import INJECTED
from tests.ui.server import OPERATOR_TOKEN, ServerThread


@pytest.fixture(scope="module")
async def ui_settings(
    kafka_bootstrap: str,
    postgres_dsn: str,
    redis_url: str,
    chain: DevChain,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings whose PostgreSQL database and Redis prefix belong to this module alone.

    Its own database, not only its own prefix: a replay rebuilds from *every* stored event,
    and other tests' pipelines store theirs in the session's database.
    """
    name = f"ui_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    settings = Settings(
        kafka=kafka_bootstrap,
        postgres=postgres_dsn.rsplit("/", 1)[0] + "/" + name,
        redis=redis_url,
        redis_prefix=f"{name}:",
        data_dir=Path(tmp_path_factory.mktemp("ui")),
        rpc=chain.rpc_url,
        deployment=chain.deployment_path,
    )
    await ensure_topics(settings.kafka, load_topology())
    store = await EventStore.connect(settings.postgres)
    await store.close()
    return settings


@pytest.fixture(scope="module")
def server(ui_settings: Settings) -> Iterator[ServerThread]:
    thread = ServerThread(ui_settings)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def operator_server(ui_settings: Settings) -> Iterator[ServerThread]:
    """The app with operator actions on (``tests.ui.server.OPERATOR_TOKEN``)."""
    thread = ServerThread(dataclasses.replace(ui_settings, operator_token=OPERATOR_TOKEN))
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
async def client(operator_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``operator_server`` (send ``OPERATOR_AUTH`` for operator actions)."""
    async with httpx.AsyncClient(base_url=operator_server.url, timeout=40) as c:
        yield c


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium per module (mark the module ``needs_chromium``)."""
    async with async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; after the test, no uncaught JavaScript error happened on it and no
    hostile value ran (``tests.ui.hostile``)."""
    context = await browser.new_context(viewport={"width": 1360, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert errors == [], errors
        assert await page.evaluate(f"typeof {INJECTED}") == "undefined"
    finally:
        await context.close()
