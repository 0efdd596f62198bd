"""Order books in headless Chromium: the intent detail page lists a plan's child orders
(venue, limit, asked, filled, fee, status; the re-planned one too) as the ledgers hold them,
and the books page draws a market's depth from ``sep.market.books`` and follows it, with a
hostile venue name shown as text (never run), and the fills per venue with their fees."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page, expect

from pipeline.config import Settings
from pipeline.market.books import TOPIC as BOOKS_TOPIC
from pipeline.models.events import Event
from pipeline.models.market import BookDelta, BookLevel, BookSnapshot
from plugins.clob_venue.books import book_key, book_value
from tests.store.book_lifecycle import clob_venues, moved_book_lifecycle
from tests.ui.chromium import needs_chromium
from tests.ui.hostile import MARKUP, RTL
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread

pytestmark = needs_chromium
HOSTILE_VENUE = f"{MARKUP[:50]}{RTL[:12]}"


@pytest.fixture(scope="module")
async def seeded(
    ui_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Event], dict[str, tuple[str, Decimal]]]:
    async with clob_venues(Path(tmp_path_factory.mktemp("clob"))) as venues:
        events = await moved_book_lifecycle(venues, 800, strategy="books-page")
        fees = {}
        for venue in venues.values():
            rows = venue.ledger._db.execute(
                "SELECT client_order_id, SUM(CAST(taker_fee AS INTEGER)) FROM fills "
                "WHERE client_order_id IS NOT NULL GROUP BY client_order_id"
            ).fetchall()
            fees |= {step: (venue.name, Decimal(fee).scaleb(-6)) for step, fee in rows}
    await store_and_project(ui_settings, events)
    return events, fees


def _snapshot(venue: str, seq: int, asks: list[tuple[str, str]]) -> BookSnapshot:
    return BookSnapshot(
        venue=venue,
        market_id="WBTC-USDC",
        chain_id=31337,
        base="WBTC",
        quote="USDC",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        maker_fee=0,
        taker_fee=500,
        seq=seq,
        bids=(BookLevel(price=Decimal("2990"), size=Decimal("2")),),  # not a real WBTC price
        asks=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in asks),
        timestamp_ms=0,
    )


async def _publish(settings: Settings, *messages: BookSnapshot | BookDelta) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka)
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(BOOKS_TOPIC, book_value(message), key=book_key(message))
    finally:
        await producer.stop()


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SEP_TEST_ARTIFACTS") or tmp_path) / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


async def test_the_detail_page_lists_the_child_orders(
    page: Page,
    server: ServerThread,
    seeded: tuple[list[Event], dict[str, tuple[str, Decimal]]],
    tmp_path: Path,
) -> None:
    events, fees = seeded
    await page.goto(f"{server.url}/ui/intents/{events[0].correlation_id}")
    rows = page.locator("#child-orders tbody tr")
    await expect(rows).to_have_count(len(fees))
    for step, (venue, fee) in fees.items():
        row = page.locator(f'#child-orders tr[data-step="{step}"]')
        await expect(row).to_have_attribute("data-status", "filled")
        await expect(row.locator("td").nth(0)).to_contain_text(venue)
        await expect(row.locator("td").nth(4)).to_have_text(f"{fee.normalize():f} USDC")
        if step.endswith("-r1"):
            await expect(row.locator("td").nth(0)).to_contain_text("re-planned")
    await expect(page.locator("#fees")).to_contain_text("USDC")
    await page.screenshot(path=str(_shots(tmp_path) / "books-detail.png"), full_page=True)


async def test_the_books_page_draws_the_depth_and_follows_it(
    page: Page,
    server: ServerThread,
    ui_settings: Settings,
    seeded: tuple[list[Event], dict[str, tuple[str, Decimal]]],
    tmp_path: Path,
) -> None:
    await _publish(ui_settings, _snapshot(HOSTILE_VENUE, 1, [("3001", "1"), ("3002", "2")]))
    # WBTC/USDC: a market no other test of the session publishes.
    await page.goto(f"{server.url}/ui/books?market=WBTC/USDC")
    await expect(page.locator("#book-venues tr")).to_have_count(1, timeout=20_000)
    row = page.locator("#book-venues tr").first
    await expect(row).to_have_attribute("data-venue", HOSTILE_VENUE)  # intact, as text
    chart = page.locator("#chart-depth")
    await expect(chart).to_have_attribute("data-asks", "2")
    await expect(chart).to_have_attribute("data-bids", "1")
    # A delta takes a level: the page follows within its refresh.
    await _publish(
        ui_settings,
        BookDelta(
            venue=HOSTILE_VENUE,
            market_id="WBTC-USDC",
            from_seq=1,
            seq=2,
            asks=(BookLevel(price=Decimal("3001"), size=Decimal(0)),),
            timestamp_ms=0,
        ),
    )
    await expect(chart).to_have_attribute("data-asks", "1", timeout=10_000)
    await expect(row.locator("td").nth(3)).to_have_text("3,002")
    # Fills per venue, with the fees the ledgers charged.
    for venue in ("clob_a", "clob_b"):
        total = sum(f for v, f in seeded[1].values() if v == venue)
        cell = page.locator(f'#venue-fills tr[data-venue="{venue}"] td.fees')
        await expect(cell).to_have_text(f"{total.normalize():f} USDC")
    await page.screenshot(path=str(_shots(tmp_path) / "books.png"), full_page=True)
