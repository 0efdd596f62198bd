"""The UI in headless Chromium (Debian's, driven by Playwright) against the real pipeline.

Open the dashboard, submit an intent through the form, watch its detail page reach
``completed`` with every lifecycle event, reload and see the same; then kill the server (every
WebSocket drops), let intents complete meanwhile, restore it, and check the page received every
change of those intents exactly once.  Screenshots of each page go to $SEP_TEST_ARTIFACTS (or
the test's temporary directory).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.samples import submission
from pipeline.store.eventstore import EventStore
from tests.store.lifecycle import TOPOLOGY
from tests.ui.server import ServerThread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
COMPLETED_PATH = ["intent.submitted", "risk.approved", "intent.accepted", "intent.prioritised",
                  "plan.created", "exec.started", "exec.step_submitted", "exec.step_filled",
                  "exec.completed"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("SEP_TEST_ARTIFACTS")
    path = Path(where) / "ui" if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def workers(ui_settings: Settings) -> Iterator[WorkerPool]:
    pool = WorkerPool(ui_settings, count=2)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert errors == [], errors  # no uncaught JavaScript error on any page
    finally:
        await context.close()


async def timeline(page: Page) -> list[tuple[int, str]]:
    items = page.locator("#timeline li[data-seq]")
    return [(int(await li.get_attribute("data-seq") or 0), await li.get_attribute("data-topic")
             or "") for li in await items.all()]


async def test_submit_watch_reload_and_survive_a_dropped_socket(
        page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings,
        shots: Path) -> None:
    await page.goto(f"{server.url}/ui/")
    await expect(page.locator("#c-executed")).to_be_visible()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")

    # The form: a bad amount is refused in place, with the field marked.
    await page.click("text=New intent")
    await expect(page.locator("#intent-form")).to_be_visible()
    await page.fill("#amount", "-2")
    await page.select_option("#counter", "WETH")
    await page.click("#submit")
    await expect(page.locator('[data-error-for="amount"]')).to_contain_text("greater than 0")
    await expect(page.locator('[data-error-for="counter"]')).to_contain_text("different")
    await page.screenshot(path=shots / "submit-form-errors.png", full_page=True)

    await page.fill("#amount", "0.25")
    await page.select_option("#counter", "USDC")
    await page.fill("#slippage", "1")
    await page.select_option("#style", "AGGRESSIVE")
    await page.fill("#strategy", f"ui-{uuid.uuid4().hex[:6]}")
    await page.click("#submit")
    await page.wait_for_url("**/ui/intents/intent-*")
    intent_id = page.url.rsplit("/", 1)[1]

    # The detail page follows the intent live to the end, every lifecycle event in order.
    await expect(page.locator("#state-badge")).to_have_attribute("data-state", "completed",
                                                                 timeout=90_000)
    expected = list(enumerate(COMPLETED_PATH, start=1))
    await expect(page.locator("#timeline li[data-seq]")).to_have_count(len(expected))
    assert await timeline(page) == expected
    await expect(page.locator("#plan")).to_contain_text("1 of 1 step(s) filled")
    store = await EventStore.connect(ui_settings.postgres)
    try:
        stored = [(e.seq, e.topic) for e in await store.events_of(intent_id)]
    finally:
        await store.close()
    assert stored == expected
    await page.screenshot(path=shots / "intent-detail.png", full_page=True)

    # A refresh rebuilds the same view from the API.
    await page.reload()
    await expect(page.locator("#state-badge")).to_have_attribute("data-state", "completed")
    assert await timeline(page) == expected
    await expect(page.locator("#facts")).to_contain_text("AGGRESSIVE")

    # Dashboard, then the server goes away while intents complete, then comes back.
    await page.goto(f"{server.url}/ui/")
    row = page.locator(f'tr[data-id="{intent_id}"]')
    await expect(row.locator(".badge")).to_have_attribute("data-state", "completed")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    server.stop()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "down")
    missed = await submit_directly(ui_settings, 3)
    await wait_until_finished(ui_settings.postgres, missed, timeout=90, pool=workers)
    await asyncio.sleep(1.0)  # the client keeps retrying against a closed port meanwhile
    server.start()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
    for missed_id in missed:
        await expect(page.locator(f'tr[data-id="{missed_id}"] .badge')).to_have_attribute(
            "data-state", "completed", timeout=20_000)
    received: list[dict[str, Any]] = await page.evaluate(
        "window.sep.page.then(p => p.stream.received)")
    store = await EventStore.connect(ui_settings.postgres)
    try:
        for missed_id in missed:
            seqs = [c["seq"] for c in received if c["intentId"] == missed_id]
            n = len(await store.events_of(missed_id))
            assert seqs == list(range(1, n + 1)), (missed_id, seqs)  # no gap, no duplicate
    finally:
        await store.close()
    ids = [c["id"] for c in received]
    assert len(ids) == len(set(ids))
    await page.screenshot(path=shots / "dashboard.png", full_page=True)


async def submit_directly(settings: Settings, count: int) -> list[str]:
    """Intents from another producer (a strategy), while the UI is down."""
    strategy = f"bg-{uuid.uuid4().hex[:6]}"
    ids = []
    async with IntentProducer(settings.kafka) as producer:
        for i in range(count):
            body = submission(TOPOLOGY, ("DISPOSE", "ACQUIRE")[i % 2], "WETH", "USDC", "0.1",
                              strategy_id=strategy, client_intent_id=f"{strategy}-{i}",
                              max_slippage="0.02")
            stamp, delivery = await producer.send(body)
            await delivery
            ids.append(predicted_intent_id(stamp, strategy, f"{strategy}-{i}"))
    return ids
