"""The order-book read side (``ui/books.py`` and the plan view), over a real uvicorn, Redis,
PostgreSQL and Kafka: an intent on books shows its child orders (venue, limit, asked, filled,
fee, status), the re-planned one included, equal to the venues' ledgers; ``GET /venues/fills``
sums fills and fees per venue from the event store; ``GET /books`` answers a market's depth
from ``sep.market.books`` as the venues publish it (snapshots, then deltas), across venues,
all-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.config import Settings
from pipeline.market.books import TOPIC as BOOKS_TOPIC
from pipeline.models.events import Event
from pipeline.models.market import BookDelta, BookLevel, BookSnapshot
from plugins.clob_venue import ClobVenue
from plugins.clob_venue.books import book_key, book_value
from tests.store.book_lifecycle import clob_venues, moved_book_lifecycle
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread


class Seeded:
    def __init__(self, events: list[Event], ledger: dict[str, tuple[str, Decimal, Decimal]]):
        self.events = events
        self.ledger = ledger
        """Per step id: (venue, WETH bought, taker fee in USDC), read from the ledgers."""


def ledger_fills(venues: dict[str, ClobVenue]) -> dict[str, tuple[str, Decimal, Decimal]]:
    out = {}
    for venue in venues.values():
        rows = venue.ledger._db.execute(
            "SELECT client_order_id, SUM(qty), SUM(CAST(taker_fee AS INTEGER)) FROM fills "
            "WHERE client_order_id IS NOT NULL GROUP BY client_order_id"
        ).fetchall()
        for step, lots, fee in rows:
            out[step] = (venue.name, lots * Decimal("0.001"), Decimal(fee).scaleb(-6))
    return out


@pytest.fixture(scope="module")
async def seeded(ui_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    async with clob_venues(Path(tmp_path_factory.mktemp("clob"))) as venues:
        events = await moved_book_lifecycle(venues, 700, strategy="books-api")
        ledger = ledger_fills(venues)
    assert events[-1].topic == "exec.completed", events[-1].payload
    await store_and_project(ui_settings, events)
    return Seeded(events, ledger)


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


async def test_the_intent_shows_its_child_orders_as_the_ledgers_hold_them(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    intent_id = seeded.events[0].correlation_id
    body = (await client.get(f"/intents/{intent_id}")).json()
    plan = body["plan"]
    orders = {s["stepId"]: s for s in plan["steps"] if s.get("kind") == "order"}
    assert set(orders) == set(seeded.ledger)
    assert any(step.endswith("-r1") for step in orders)  # the re-planned child is listed
    for step_id, s in orders.items():
        venue, weth, fee = seeded.ledger[step_id]
        assert (s["venue"], s["status"], s["askedAsset"], s["feeAsset"]) == (
            venue,
            "filled",
            "WETH",
            "USDC",
        )
        assert (Decimal(s["filled"]), Decimal(s["fee"])) == (weth, fee)
        assert Decimal(s["asked"]) >= Decimal(s["filled"]) > 0
        assert Decimal(s["limitPrice"]) > 0
    assert Decimal(plan["fees"]["USDC"]) == sum(f for _, _, f in seeded.ledger.values())
    fills = {f["stepId"]: f for f in body["intent"]["fills"]}
    assert {s: Decimal(f["fee"]) for s, f in fills.items()} == {
        s: fee for s, (_, _, fee) in seeded.ledger.items()
    }


async def test_fills_per_venue_sum_the_event_store(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    body = (await client.get("/venues/fills")).json()
    table = {v["venue"]: v for v in body["venues"]}
    for name in ("clob_a", "clob_b"):
        mine = [v for v in seeded.ledger.values() if v[0] == name]
        assert table[name]["fills"] == len(mine)
        assert Decimal(table[name]["received"]["WETH"]) == sum(w for _, w, _ in mine)
        assert Decimal(table[name]["fees"]["USDC"]) == sum(f for _, _, f in mine)
        assert table[name]["unitemisedFills"] == 0


def _snapshot(venue: str, fee: int, seq: int, asks: list[tuple[str, str]]) -> BookSnapshot:
    return BookSnapshot(
        venue=venue,
        market_id="WETH-USDC",
        chain_id=31337,
        base="WETH",
        quote="USDC",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        maker_fee=0,
        taker_fee=fee,
        seq=seq,
        bids=(BookLevel(price=Decimal("2999"), size=Decimal("1")),),
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


async def _books_until(
    client: httpx.AsyncClient, done: Any, within_s: float = 30.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        response = await client.get("/books", params={"market": "WETH/USDC"})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_depth_follows_the_book_topic(
    client: httpx.AsyncClient, ui_settings: Settings
) -> None:
    await _publish(
        ui_settings,
        _snapshot("depth_a", 1000, 1, [("3001", "1"), ("3002", "3")]),
        _snapshot("depth_b", 0, 1, [("3003", "2")]),
    )
    body = await _books_until(
        client,
        lambda b: b["book"] and {"depth_a", "depth_b"} <= {v["venue"] for v in b["book"]["venues"]},
    )
    assert {"market": "WETH/USDC", "venues": ["depth_a", "depth_b"]} in [
        {**m, "venues": [v for v in m["venues"] if v.startswith("depth_")]} for m in body["markets"]
    ]
    mine = [lv for lv in body["book"]["depth"]["asks"] if lv["price"] in ("3003", "3004.001")]
    # depth_a's 3001 is 3004.001 after its 0.10 % fee: depth_b's 3003 comes first.
    assert [lv["price"] for lv in mine] == ["3003", "3004.001"]
    # A delta moves it: depth_b's 3003 is taken.
    await _publish(
        ui_settings,
        BookDelta(
            venue="depth_b",
            market_id="WETH-USDC",
            from_seq=1,
            seq=2,
            asks=(BookLevel(price=Decimal("3003"), size=Decimal(0)),),
            timestamp_ms=0,
        ),
    )
    body = await _books_until(
        client,
        lambda b: next(v for v in b["book"]["venues"] if v["venue"] == "depth_b")["seq"] == 2,
    )
    venue_b = next(v for v in body["book"]["venues"] if v["venue"] == "depth_b")
    assert (venue_b["seq"], venue_b["asks"]) == (2, [])
    assert "3003" not in [lv["price"] for lv in body["book"]["depth"]["asks"]]


async def test_bad_book_queries_are_named(client: httpx.AsyncClient) -> None:
    response = await client.get("/books", params={"market": "WETH"})
    assert response.status_code == 422
    assert "market" in response.text
    response = await client.get("/books", params={"levels": "0"})
    assert response.status_code == 422
