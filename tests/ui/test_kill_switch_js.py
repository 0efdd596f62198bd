"""``ui/static/js/kill_switch.js`` in headless Chromium against the real API and broker: the
component mounted in a page, a strategy's switch engaged after the typed confirmation (the
button stays disabled until it matches), shown engaged, then resumed from its row.  A
strategy of this test's own is killed (the broker is shared by the session)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, async_playwright, expect

from pipeline.config import Settings
from pipeline.control import kill_switch
from tests.ui.chromium import CHROMIUM, needs_chromium
from tests.ui.server import OPERATOR_TOKEN as TOKEN
from tests.ui.server import ServerThread

pytestmark = needs_chromium


@pytest.fixture
async def page(operator_server: ServerThread) -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{operator_server.url}/ui/")
            await page.evaluate(
                """async () => {
                    const { mount } = await import("/static/js/kill_switch.js");
                    const section = document.createElement("section");
                    section.id = "kill-switch";
                    document.body.prepend(section);
                    window.killSwitch = mount(section);
                }"""
            )
            yield page
            assert errors == [], errors
        finally:
            await browser.close()


async def test_engage_with_typed_confirmation_then_resume(
    page: Page, ui_settings: Settings
) -> None:
    strategy = f"js-{uuid.uuid4().hex[:8]}"
    scope = f"strategy:{strategy}"
    section = page.locator("#kill-switch")
    form = section.locator("form.kill-engage")
    await expect(section.locator(".kill-banner")).to_be_visible()
    await form.locator("input[value=strategy]").check()
    await form.locator("input[name=strategy]").fill(strategy)
    await form.locator("input[name=reason]").fill("signal <b>looks</b> wrong")
    await form.locator("input[name=actor]").fill("ops-carol")
    await form.locator("input[name=token]").fill(TOKEN)
    button = form.locator("button")
    await expect(form.locator(".kill-expected")).to_have_text(scope)
    await form.locator("input[name=confirm]").fill("global")
    await expect(button).to_be_disabled()  # not the scope being stopped
    await form.locator("input[name=confirm]").fill(scope)
    await expect(button).to_be_enabled()
    await button.click()
    await expect(form.locator(".kill-result")).to_contain_text("control.killed")
    row = section.locator(f'tr.kill-switch[data-scope="{scope}"]')
    await expect(row).to_have_class("kill-switch engaged")
    await expect(row).to_contain_text("signal <b>looks</b> wrong")  # shown, never markup
    await expect(section.locator(".kill-banner")).to_have_attribute("data-state", "killed")
    state = await kill_switch.read_state(ui_settings.kafka)
    killed = state.killed(strategy)
    assert killed is not None
    assert (killed.actor, killed.reason) == ("ops-carol", "signal <b>looks</b> wrong")

    resume = row.locator("form.kill-resume")
    await resume.locator("input[name=reason]").fill("fixed")
    await resume.locator("button").click()
    await expect(section.locator(f'tr.kill-switch[data-scope="{scope}"]')).to_have_class(
        "kill-switch resumed"
    )
    assert (await kill_switch.read_state(ui_settings.kafka)).killed(strategy) is None
