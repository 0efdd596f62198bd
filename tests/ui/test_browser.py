"""The UI in headless Chromium (Debian's, driven by Playwright) against the real pipeline.

Open the dashboard, submit an intent through the form, watch its detail page reach
``completed`` with every lifecycle event, reload and see the same; then kill the server (every
WebSocket drops), let intents complete meanwhile, restore it, and check the page received every
change of those intents exactly once.  Screenshots of each page go to $SEP_TEST_ARTIFACTS (or
the test's temporary directory).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page, expect

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.samples import submission
from pipeline.stages.rejections import dead_letter
from pipeline.store.eventstore import EventStore
from pipeline.store.readmodel import ReadModel
from tests.store.lifecycle import TOPOLOGY
from tests.ui import hostile
from tests.ui.chromium import needs_chromium
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread

COMPLETED_PATH = [
    "intent.submitted",
    "risk.approved",
    "intent.accepted",
    "intent.prioritised",
    "plan.created",
    "exec.started",
    "exec.step_submitted",
    "exec.step_filled",
    "exec.completed",
]

pytestmark = needs_chromium


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


async def timeline(page: Page) -> list[tuple[int, str]]:
    items = page.locator("#timeline li[data-seq]")
    return [
        (int(await li.get_attribute("data-seq") or 0), await li.get_attribute("data-topic") or "")
        for li in await items.all()
    ]


async def test_submit_watch_reload_and_survive_a_dropped_socket(
    page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
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
    await expect(page.locator("#state-badge")).to_have_attribute(
        "data-state", "completed", timeout=90_000
    )
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
            "data-state", "completed", timeout=20_000
        )
    received: list[dict[str, Any]] = await page.evaluate(
        "window.sep.page.then(p => p.stream.received)"
    )
    store = await EventStore.connect(ui_settings.postgres)
    try:
        for missed_id in missed:
            seqs = [c["seq"] for c in received if c["intentId"] == missed_id]
            n = len(await store.events_of(missed_id))
            # No gap, no duplicate.  Not necessarily in seq order: an intent's events travel
            # on several topics, and project applies them as its batches bring them (ui/stream).
            assert sorted(seqs) == list(range(1, n + 1)), (missed_id, seqs)
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
            body = submission(
                TOPOLOGY,
                ("DISPOSE", "ACQUIRE")[i % 2],
                "WETH",
                "USDC",
                "0.1",
                strategy_id=strategy,
                client_intent_id=f"{strategy}-{i}",
                max_slippage="0.02",
            )
            stamp, delivery = await producer.send(body)
            await delivery
            ids.append(predicted_intent_id(stamp, strategy, f"{strategy}-{i}"))
    return ids


# What every intents table must still show, whatever a row holds.
COLUMNS = [
    "Submitted",
    "Intent",
    "Strategy",
    "Side",
    "Pair",
    "Amount",
    "Status",
    "Prio",
    "Received",
    "Slippage",
    "Reason",
]

LAYOUT = """() => {
  const table = document.querySelector("table.intents");
  const scroll = table.closest(".scroll");
  const view = document.documentElement.clientWidth;
  const heads = [...table.querySelectorAll("thead th")].map((th) => {
    const r = th.getBoundingClientRect();
    return { name: th.textContent.trim(), left: r.left, right: r.right, width: r.width };
  });
  const rows = [...table.querySelectorAll("tbody tr[data-id]")].map((tr) => ({
    id: tr.dataset.id.length,
    cells: [...tr.children].map((td) => {
      const r = td.getBoundingClientRect();
      return { right: r.right, width: r.width, text: td.innerText.length };
    }),
  }));
  return { view, heads, rows, overflow: scroll.scrollWidth - scroll.clientWidth,
           page: document.documentElement.scrollWidth - view };
}"""


async def assert_layout_holds(page: Page, at_least_rows: int) -> dict[str, Any]:
    layout: dict[str, Any] = await page.evaluate(LAYOUT)
    assert [h["name"] for h in layout["heads"]] == COLUMNS
    for head in layout["heads"]:  # every column on screen, none squeezed to nothing
        assert head["width"] >= 20, head
        assert head["right"] <= layout["view"], head
    assert layout["overflow"] <= 1, layout  # no horizontal scrolling
    assert layout["page"] <= 1, layout
    assert len(layout["rows"]) >= at_least_rows
    for row in layout["rows"]:
        assert len(row["cells"]) == len(COLUMNS)
        for cell in row["cells"]:
            assert cell["right"] <= layout["view"], row
            assert cell["text"] <= 200, row
    return layout


async def assert_nothing_injected(page: Page) -> None:
    assert await page.evaluate(f"typeof {hostile.INJECTED}") == "undefined"
    # The markup is shown as text: no element it names exists anywhere in the page.
    assert await page.locator("#app img, #app script, #app b").count() == 0


async def test_hostile_values_keep_every_column_and_inject_nothing(
    page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
    now = int(time.time() * 1000)
    # Seeded the way the project stage writes them: the storable ones in both stores (so the
    # detail page has their events), the rest in the read model only (NUL, a 60 KB id).
    storable = hostile.hostile_rejections(now, storable=True)
    await store_and_project(ui_settings, storable)
    await project_only(ui_settings, hostile.hostile_rejections(now + 10, storable=False)[3:])
    # And one through the real pipeline: a raw record with a 60 KB strategy id, RTL client id.
    marker = f"raw-{uuid.uuid4().hex[:8]}-"
    async with IntentProducer(ui_settings.kafka) as producer:
        body = submission(
            TOPOLOGY,
            "DISPOSE",
            "WETH",
            "USDC",
            "0.1",
            strategy_id="s",
            client_intent_id=hostile.RTL + hostile.ZERO_WIDTH,
        )
        body["strategyId"] = marker + hostile.HUGE[: 60_000 - len(marker)]
        _stamp, delivery = await producer.send(orjson.dumps(body), key="hostile")
        await delivery

    await page.goto(f"{server.url}/ui/")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    strategy_cells = page.locator("table.intents td.txt:nth-child(3) .clip")
    await expect(page.locator(f'table.intents td .clip[title^="{marker}"]')).to_have_count(
        1, timeout=60_000
    )  # the pipeline's rejection arrived live
    layout = await assert_layout_holds(page, at_least_rows=6)
    assert max(r["id"] for r in layout["rows"]) > 60_000  # the 60 KB id is one of the rows
    await assert_nothing_injected(page)
    shown = await strategy_cells.all_inner_texts()
    assert shown
    assert max(len(s) for s in shown) <= 24
    titles = [await c.get_attribute("title") or "" for c in await strategy_cells.all()]
    assert max(len(t) for t in titles) <= 1000  # hovering shows a bounded part
    texts = " ".join(await page.locator("table.intents tbody").all_inner_texts())
    for invisible in ("\u202e", "\u200b", "\x00"):
        assert invisible not in texts
    assert "␀" in texts  # NUL and the invisible ones are shown, marked
    assert "\ufffd" in texts
    await page.screenshot(path=shots / "dashboard-hostile.png", full_page=True)

    # While the page is open: more arrive live and are bounded the same way.
    await project_only(ui_settings, hostile.hostile_rejections(now + 20, storable=False))
    rows = page.locator("table.intents tbody tr[data-id]")
    before = len(layout["rows"])
    await expect(rows).to_have_count(before + 5)
    await expect(page.locator("table.intents tbody tr.flash")).not_to_have_count(0)
    await assert_layout_holds(page, at_least_rows=before + 5)
    await assert_nothing_injected(page)

    # The detail page shows the whole value (in a box that scrolls), still as text.
    first = storable[0]
    await page.goto(f"{server.url}/ui/intents/{first.correlation_id}")
    await expect(page.locator("#state-badge")).to_have_attribute("data-state", "rejected")
    whole = page.locator("#facts pre.whole").first
    assert len(await whole.text_content() or "") == len(hostile.HUGE)
    await page.locator("#facts details.whole summary").first.click()
    facts = await page.locator("#facts").bounding_box()
    assert facts is not None
    assert facts["x"] + facts["width"] <= 1360
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1360
    await assert_nothing_injected(page)
    await page.screenshot(path=shots / "intent-detail-hostile.png", full_page=True)


async def project_only(settings: Settings, events: list[Any]) -> None:
    model = ReadModel.connect(
        settings.redis, settings.redis_prefix, reference_prices=dict(TOPOLOGY.risk.reference_prices)
    )
    try:
        await model.apply(events)
    finally:
        await model.close()


async def test_pipeline_view_is_live(
    page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
    ids = await submit_directly(ui_settings, 4)
    await wait_until_finished(ui_settings.postgres, ids, timeout=90, pool=workers)
    await page.goto(f"{server.url}/ui/pipeline")
    # The header says which mode the stack is in (the repository's topology: live).
    await expect(page.locator("#mode")).to_have_text("LIVE")
    await expect(page.locator("#mode")).to_have_attribute("data-mode", "live")
    for dependency in ("kafka", "postgres", "redis", "chain"):
        await expect(page.locator(f"#h-{dependency}")).to_have_attribute("data-status", "ok")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    for stage in ("ingest", "validate", "prioritise", "plan", "execute"):
        await expect(
            page.locator(f'#stages tr[data-stage="{stage}"] [data-field="p99"]')
        ).not_to_have_text("—", timeout=15_000)
    await expect(page.locator("#groups tr[data-group]")).not_to_have_count(0, timeout=15_000)
    await expect(page.locator("#lag tr[data-tp]")).not_to_have_count(0, timeout=15_000)
    # Pushed, not polled: the frames keep coming over the socket.
    frames = await page.evaluate("window.sep.page.then(p => p.stream.frames)")
    await page.wait_for_function(
        f"window.sep.page.then(p => p.stream.frames > {frames})", timeout=10_000
    )
    await page.screenshot(path=shots / "pipeline.png", full_page=True)


async def test_dead_letter_inspector(
    page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
    # Raw records the pipeline refuses: markup and NUL in invalid JSON, and an unknown field.
    marker = f"dl-{uuid.uuid4().hex[:8]}"
    async with IntentProducer(ui_settings.kafka) as producer:
        for raw in (
            f'{{"strategyId": "{marker}{hostile.MARKUP}\x00'.encode(),
            orjson.dumps({"strategyId": marker, "nonsense": hostile.MARKUP}),
        ):
            _stamp, delivery = await producer.send(raw, key=marker)
            await delivery
    await page.goto(f"{server.url}/ui/deadletters?q={marker}")
    rows = page.locator("table.deadletters tr.dl")
    for _ in range(60):  # the pipeline writes them within a moment; the page reads on demand
        if await rows.count() >= 2:
            break
        await asyncio.sleep(0.5)
        await page.click("#dl-refresh")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#kinds .chip")).not_to_have_count(0)
    # The last refresh may still be loading: a reload re-renders the rows under the click.
    await expect(page.locator("table.deadletters tbody[data-loading]")).to_have_count(0)
    await rows.first.click()
    preview = page.locator("tr.dl-detail pre.preview")
    await expect(preview).to_be_visible()
    # An opened detail stays open across a refresh.
    await page.click("#dl-refresh")
    await expect(page.locator("table.deadletters tbody[data-loading]")).to_have_count(0)
    await expect(preview).to_be_visible()
    await assert_nothing_injected(page)
    layout = await page.evaluate("document.documentElement.scrollWidth")
    assert layout <= 1360
    await page.screenshot(path=shots / "deadletters.png", full_page=True)
    # Filtering by a kind keeps only that kind (and survives a reload: it is in the URL).
    kinds = page.locator("#kinds .chip[data-kind]:not([data-kind=''])")
    kind = await kinds.first.get_attribute("data-kind") or ""
    await kinds.first.click()
    await page.wait_for_url("**kind=**")
    await expect(page.locator("#kinds .chip.active")).to_have_attribute("data-kind", kind)
    reasons = await page.locator("table.deadletters tr.dl td.reason .clip").all()
    assert reasons
    for reason in reasons:
        assert (await reason.get_attribute("title") or "").startswith(kind)


async def test_metrics_page_shows_the_figures_of_metrics(
    page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
    ids = await submit_directly(ui_settings, 2)
    await wait_until_finished(ui_settings.postgres, ids, timeout=90, pool=workers)
    await page.goto(f"{server.url}/ui/")
    await page.click("nav >> text=Metrics")
    await page.wait_for_url("**/ui/metrics")
    await expect(page.locator("#m-stages tbody tr[data-key]")).not_to_have_count(0)
    # The same numbers /metrics has, read for a person.
    async with httpx.AsyncClient(base_url=server.url) as client:
        raw = (await client.get("/metrics")).text
    states = {
        m.group(1): int(float(m.group(2)))
        for m in re.finditer(r'^sep_intents\{state="([^"]+)"\} (\S+)$', raw, re.M)
    }
    assert states.get("completed", 0) >= 2
    await page.evaluate("window.sep.page.then(p => p.reload())")  # the page's own fetch, now
    shown = {
        await tr.get_attribute("data-key") or "": int(
            (await tr.locator("td").nth(1).inner_text()).replace(",", "")
        )
        for tr in await page.locator("#m-states tbody tr[data-key]").all()
    }
    assert shown == states
    await expect(page.locator("#m-latency tbody tr[data-key]")).not_to_have_count(0)
    await expect(page.locator("#m-duration tr[data-key='completed']")).to_have_count(1)
    await page.screenshot(path=shots / "metrics.png", full_page=True)


async def chart_counts(client: httpx.AsyncClient, strategy: str) -> dict[str, int]:
    prices = (await client.get("/charts/prices")).json()
    pnl = (await client.get("/charts/pnl", params={"strategy": strategy})).json()
    states = (await client.get("/charts/states")).json()
    return {
        "price": len(prices["points"]),
        "fills": len(prices["fills"]),
        "pnl": len(pnl["points"]),
        "states": len(states["points"]),
    }


async def drawn(page: Page) -> dict[str, int]:
    return {
        name: int(await page.get_attribute(f"#chart-{chart}", f"data-{field}") or -1)
        for name, chart, field in (
            ("price", "price", "points"),
            ("fills", "price", "fills"),
            ("pnl", "pnl", "points"),
            ("states", "states", "points"),
        )
    }


async def test_charts_draw_the_history_and_follow_the_pipeline(
    page: Page, server: ServerThread, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
    ids = await submit_directly(ui_settings, 4)
    await wait_until_finished(ui_settings.postgres, ids, timeout=90, pool=workers)
    store = await EventStore.connect(ui_settings.postgres)
    try:
        strategy = (await store.events_of(ids[0]))[0].payload["intent"]["strategyId"]
    finally:
        await store.close()
    await page.goto(f"{server.url}/ui/")
    await page.click("nav >> text=Charts")
    await page.wait_for_url("**/ui/charts")
    await page.goto(f"{server.url}/ui/charts?strategy={strategy}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    for chart in ("price", "pnl", "states"):  # the library drew on its canvases
        await expect(page.locator(f"#chart-{chart} canvas")).not_to_have_count(0)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        expected = await chart_counts(client, strategy)
        assert expected["fills"] >= 4
        assert expected["pnl"] >= 1
        assert expected["states"] >= 1
        assert await drawn(page) == expected
        await page.screenshot(path=shots / "charts.png", full_page=True)

        # The live tail: two more fills (another strategy's), a second apart, reach the page
        # over the socket (no reload), and the page then holds what the endpoints hold.
        before = await drawn(page)
        for _ in range(2):
            more = await submit_directly(ui_settings, 1)
            await wait_until_finished(ui_settings.postgres, more, timeout=90, pool=workers)
            await asyncio.sleep(1.1)
        await expect(page.locator("#chart-price")).to_have_attribute(
            "data-fills", str(before["fills"] + 2), timeout=15_000
        )
        expected = await chart_counts(client, strategy)
        await page.wait_for_function(
            "([n, m]) => document.querySelector('#chart-states').dataset.points == n"
            " && document.querySelector('#chart-price').dataset.points == m",
            arg=[str(expected["states"]), str(expected["price"])],
            timeout=15_000,
        )
        live = await page.evaluate("window.sep.page.then(p => [p.price, p.states])")
    # A refresh draws the same picture.
    await page.reload()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert await page.evaluate("window.sep.page.then(p => [p.price, p.states])") == live
    await page.screenshot(path=shots / "charts-after-reload.png", full_page=True)


async def test_a_dead_letter_is_redriven_from_the_page_and_completes(
    page: Page, workers: WorkerPool, ui_settings: Settings, shots: Path
) -> None:
    token = uuid.uuid4().hex
    operator_server = ServerThread(dataclasses.replace(ui_settings, operator_token=token))
    operator_server.start()
    try:
        # A submission a stage failed on for a passing reason (its retries ran out while a
        # dependency was away), dead-lettered by the real dead_letter().
        marker = f"rd-{uuid.uuid4().hex[:8]}"
        raw = orjson.dumps(
            submission(
                TOPOLOGY,
                "DISPOSE",
                "WETH",
                "USDC",
                "0.1",
                strategy_id=marker,
                client_intent_id=f"{marker}-0",
                max_slippage="0.02",
            )
        )
        out = dead_letter(
            f"dl-{marker}",
            raw,
            reason="ingest failed: ConnectionError()",
            errors=(),
            source="sep.intents.submitted/0/1",
            correlation_id="",
        )
        producer = AIOKafkaProducer(bootstrap_servers=ui_settings.kafka)
        await producer.start()
        try:
            await producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=list(out.headers)
            )
        finally:
            await producer.stop()
        await page.goto(f"{operator_server.url}/ui/deadletters?q={marker}")
        await page.locator("table.deadletters tr.dl").first.click()
        form = page.locator("form.redrive")
        await form.locator("input[name=token]").fill("wrong")
        await form.locator("input[name=operator]").fill("ops-bob")
        await form.locator("input[name=note]").fill("broker back")
        await form.locator("button").click()
        await expect(form.locator(".redrive-result")).to_contain_text("wrong operator token")
        await form.locator("input[name=token]").fill(token)
        await form.locator("button").click()
        await expect(form.locator(".redrive-result")).to_contain_text(
            "re-driven to sep.intents.submitted"
        )
        await page.screenshot(path=shots / "deadletter-redriven.png", full_page=True)

        # The pipeline takes it as any submission: it completes.
        async with httpx.AsyncClient(base_url=operator_server.url) as client:
            [item] = (await client.get("/deadletters", params={"q": marker})).json()["items"]
        to = item["redriven"]["payload"]["redrivenTo"]
        intent_id = predicted_intent_id(to["timestamp"], marker, f"{marker}-0")
        await wait_until_finished(ui_settings.postgres, [intent_id], timeout=90, pool=workers)
        store = await EventStore.connect(ui_settings.postgres)
        try:
            assert (await store.events_of(intent_id))[-1].topic == "exec.completed"
        finally:
            await store.close()
        # A reload shows it as re-driven, with who and why; no second re-drive offered.
        await page.reload()
        await page.locator("table.deadletters tr.dl").first.click()
        await expect(page.locator("p.redriven")).to_contain_text("ops-bob")
        await expect(page.locator("form.redrive")).to_have_count(0)
    finally:
        operator_server.stop()
