"""The risk page and the dashboard's risk alerts in headless Chromium: hostile strategy ids and
messages are shown as text (never run), the states and limits appear, the kill-switch component
is mounted in its section, a killed strategy says so, and a breaker's transition on the change
stream alerts the dashboard."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, expect

from pipeline.config import Settings
from pipeline.control.keys import kill_key, risk_key
from pipeline.control.publish import control_event
from pipeline.models.control import KillSwitchChanged, RiskStateChanged
from pipeline.models.events import Event
from pipeline.store import risk_usage
from pipeline.store.control_log import apply_control
from tests.ui.chromium import needs_chromium
from tests.ui.hostile import INJECTED, MARKUP, RTL
from tests.ui.server import ServerThread

pytestmark = needs_chromium
STRATEGY = f"{MARKUP[:60]}{RTL[:20]}-{uuid.uuid4().hex[:4]}"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: dialogs.append(d.message))
    try:
        yield page
        assert errors == [], errors
        assert dialogs == [], dialogs  # nothing hostile opened an alert()
        assert await page.evaluate(f"typeof {INJECTED}") == "undefined"
    finally:
        await context.close()


def change(scope: str, state: str, previous: str, seq: int, message: str) -> Event:
    record = RiskStateChanged(
        scope=scope,
        state=state,
        previous=previous,
        rule="reduce_at_loss",
        message=message,
        epoch_ms=1,
        equity=Decimal(9400),
        baseline_equity=Decimal(10000),
        pnl=Decimal(-600),
        limit="500",
        actual="600",
        actor="risk-engine",
        reason=message,
    )
    return control_event(risk_key(scope), "risk.state_changed", record, seq, 1_000 + seq)


async def test_risk_page_and_dashboard_alert(
    page: Page, server: ServerThread, ui_settings: Settings
) -> None:
    scope = f"strategy:{STRATEGY}"
    client = aioredis.from_url(ui_settings.redis, decode_responses=True)
    try:
        await apply_control(
            client,
            ui_settings.redis_prefix,
            [change(scope, "REDUCING", "NORMAL", 1, f"loss {MARKUP}")],
        )
        await risk_usage.publish(
            client,
            ui_settings.redis_prefix,
            {
                "at": 5,
                "quoteAsset": "USDC",
                "marks": {"WETH": {"price": "2950", "ageMs": 3, "source": MARKUP}},
                "strategies": {
                    STRATEGY: {
                        "limits": {},
                        "usage": {
                            "openIntents": 3,
                            "tradedToday": "100",
                            "largestPosition": "4500000",
                            "concentration": "0.45",
                            "positions": {
                                "WETH": {"quantity": "1.5", "held": "1", "value": "4425"}
                            },
                        },
                    }
                },
                "scopes": {
                    scope: {"pnl": "-600", "equity": "9400", "drawdown": "0.06", "peak": "10000"}
                },
            },
        )
        await page.goto(f"{server.url}/ui/risk")
        panel = page.locator("section.risk-strategy")  # this module's Redis prefix: only ours
        await expect(panel).to_have_count(1)
        await expect(panel).to_have_attribute("data-strategy", STRATEGY)  # intact, as text
        await expect(panel).to_have_attribute("data-state", "REDUCING")
        await expect(
            panel.locator('tr[data-rule="max_open_intents"] [data-field="used"]')
        ).to_have_text("3")
        await expect(
            panel.locator('tr[data-rule="max_position"] [data-field="limit"]')
        ).to_have_text("5,000,000")
        await expect(panel.locator("button[data-reset]")).to_be_visible()
        # The kill switch component is installed: mounted in its section, it also shows the
        # venue breakers, so the page's own breaker table steps aside (one, not two).
        section = page.locator("section#kill-switch")
        await expect(section).to_be_visible()
        await expect(section.locator("form.kill-engage")).to_be_visible()
        await expect(section.locator("form.kill-engage button[type=submit]")).to_contain_text(
            "Stop"
        )
        await expect(section.locator(".kill-banner")).to_have_attribute("data-state", "trading")
        await expect(section.locator(".breaker-state")).to_be_attached()
        await expect(page.locator("#kill-switch-note")).to_have_count(0)
        await expect(page.locator("#r-breakers-panel")).to_be_hidden()
        # Killed: said on the strategy's panel, next to its breaker state (REDUCING here).
        await expect(panel.locator("[data-killed]")).to_have_count(0)
        kill = KillSwitchChanged(scope=scope, actor="ops", reason=f"stop {MARKUP}")
        await apply_control(
            client,
            ui_settings.redis_prefix,
            [control_event(kill_key(scope), "control.killed", kill, 1, 2_000)],
        )
        await page.reload()
        await expect(panel.locator("[data-killed]")).to_have_attribute("data-killed", scope)
        await expect(panel).to_have_attribute("data-state", "REDUCING")

        # The dashboard: a transition arriving on the change stream is an alert.
        await page.goto(f"{server.url}/ui/")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await apply_control(
            client,
            ui_settings.redis_prefix,
            [change(scope, "HALTED", "REDUCING", 2, f"halt {MARKUP}")],
        )
        alert = page.locator('#risk-alerts [data-alert="risk.state_changed"]')
        await expect(alert).to_have_attribute("data-state", "HALTED")
        await expect(alert).to_contain_text("REDUCING")
        await expect(page.locator("#intents tr[data-id='']")).to_have_count(0)  # not an intent
    finally:
        await client.aclose()
