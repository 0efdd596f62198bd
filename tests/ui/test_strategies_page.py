"""The strategies page in a real browser: the topology's strategies listed with their config,
and a strategy disabled from the page with the operator token (one event on sep.control)."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from playwright.async_api import Dialog, Page, expect

from pipeline.config import Settings
from pipeline.control import keys
from pipeline.control.feed import ControlFeed
from pipeline.store.control_log import apply_control
from pipeline.strategy_admin import change_strategy
from pipeline.topology import load_topology
from tests.ui.chromium import needs_chromium
from tests.ui.server import OPERATOR_TOKEN as TOKEN
from tests.ui.server import ServerThread

STRATEGY = f"dca-page-{uuid.uuid4().hex[:8]}"

pytestmark = needs_chromium


async def test_list_then_disable_from_the_page(
    page: Page, operator_server: ServerThread, ui_settings: Settings
) -> None:
    # A strategy of this test's own, enabled at run time and filed as project would file it.
    config = {"asset": "WETH", "quote": "USDC", "amount": "5", "interval_ms": 60_000}
    enabled = await change_strategy(
        ui_settings.kafka,
        load_topology(),
        "enable",
        STRATEGY,
        actor="t",
        reason="r",
        plugin="dca",
        config=config,
    )
    client = aioredis.from_url(ui_settings.redis)
    try:
        await apply_control(client, ui_settings.redis_prefix, [enabled])
    finally:
        await client.aclose()

    await page.goto(f"{operator_server.url}/ui/strategies")
    row = page.locator(f"tr.strategy[data-id='{STRATEGY}']")
    await expect(row).to_contain_text("enabled")
    await expect(row).to_contain_text("interval_ms")
    await expect(page.locator("tr.strategy[data-id='momentum']")).to_contain_text("momentum")

    await page.fill("#st-token", TOKEN)
    await page.fill("#st-actor", "ops-page")

    async def give_reason(dialog: Dialog) -> None:
        await dialog.accept("from the page")

    page.once("dialog", give_reason)
    await row.locator("button[data-act=disable]").click()
    await expect(page.locator("#st-result")).to_contain_text(f"strategy.disabled {STRATEGY}")
    feed = ControlFeed(ui_settings.kafka)
    await feed.start()
    try:
        change = feed.state.strategy(STRATEGY)
    finally:
        await feed.stop()
    assert change is not None
    assert (change.enabled, change.actor, change.reason) == (False, "ops-page", "from the page")
    assert feed.state.seq(keys.strategy_key(STRATEGY)) == enabled.seq + 1
