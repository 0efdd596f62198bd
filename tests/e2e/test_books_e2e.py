"""Intents on order books, end to end: the clob venues enabled, their books published on
``sep.market.books``, followed by the worker's book feed, planned by the plan stage (on the
books alone, or split over the sim pools and the books when that is cheaper), executed as
IOC orders and swaps, filled once each; every fill in the venues' own ledgers equals the
execution events.

The books' makers quote around a steady 3,000 here (``volatility_bps`` 0), the sim pool's
price: clob_a's deep asks at 3,000.60 cost 3,002.10 with its fee, the pool's first units
3,001.50 rising with the trade, so a 10 WETH trade is cheapest split between them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.client import predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.intent_ids import submission_key
from pipeline.market.books import TOPIC as BOOKS_TOPIC
from pipeline.samples import submission
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from tests.e2e.checks import COMPLETED_PATH, settled_events

BOOK_VENUES = ("clob_a", "clob_b")
LOTS = {"clob_a": Decimal("0.0001"), "clob_b": Decimal("0.001")}
INPUT_TOPIC = "sep.intents.submitted"


@pytest.fixture(scope="module")
def book_topology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's topology with the two book venues enabled."""
    data = yaml.safe_load(Path(DEFAULT_PATH).read_text())
    for venue in BOOK_VENUES:
        data["plugins"]["venues"][venue]["enabled"] = True
        for market in data["plugins"]["venues"][venue]["config"]["markets"].values():
            market["volatility_bps"] = "0"
    path = tmp_path_factory.mktemp("books") / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def workers(prepared: Settings, book_topology: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(
        prepared, count=1, extra_env={"SEP_TOPOLOGY": str(book_topology)}, name="books"
    )
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


def _fills_per_step(data_dir: Path, venue: str) -> dict[str, int]:
    """Orders filled per client order id (the step id) in ``venue``'s own ledger."""
    path = data_dir / "venues" / venue / "ledger.sqlite"
    if not path.is_file():
        return {}
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT client_order_id, COUNT(DISTINCT taker_order_id) FROM fills "
            "WHERE client_order_id IS NOT NULL GROUP BY client_order_id"
        )
        return {step: count for step, count in rows}
    finally:
        db.close()


async def _snapshots_published(settings: Settings, venues: tuple[str, ...]) -> None:
    """Wait until ``sep.market.books`` holds a snapshot of every venue."""
    consumer = AIOKafkaConsumer(
        BOOKS_TOPIC, bootstrap_servers=settings.kafka, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        async with asyncio.timeout(60):
            while not seen >= set(venues):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        message = orjson.loads(record.value or b"{}")
                        if message.get("kind") == "snapshot":
                            seen.add(str(message.get("venue")))
    finally:
        await consumer.stop()


async def _submit(settings: Settings, bodies: list[dict[str, object]]) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka)
    await producer.start()
    ids = []
    try:
        for body in bodies:
            stamp = time.time_ns() // 1_000_000
            await producer.send_and_wait(
                INPUT_TOPIC,
                orjson.dumps(body),
                key=submission_key(str(body["strategyId"]), str(body["clientIntentId"])).encode(),
                timestamp_ms=stamp,
            )
            ids.append(
                predicted_intent_id(stamp, str(body["strategyId"]), str(body["clientIntentId"]))
            )
    finally:
        await producer.stop()
    return ids


async def test_intents_on_books_complete_with_one_fill_per_child_order(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection, book_topology: Path
) -> None:
    topology = load_topology(book_topology)
    run = uuid.uuid4().hex[:8]
    bodies = []
    for i in range(6):
        body = submission(
            topology,
            ("ACQUIRE", "DISPOSE")[i % 2],
            "WETH",
            "USDC",
            "0.5",
            strategy_id=f"books-{run}",
            client_intent_id=f"b{i}",
            max_slippage="0.02",
            venues=list(BOOK_VENUES),
        )
        bodies.append(body)
    # The worker's book feed needs the books' first snapshots before it can plan on them.
    await _snapshots_published(prepared, BOOK_VENUES)
    await asyncio.sleep(1)  # the worker's feed reads them a poll later
    ids = await _submit(prepared, bodies)
    await wait_until_finished(prepared.postgres, ids, timeout=120, pool=workers)
    by_intent = await settled_events(db, ids)
    fills = {venue: _fills_per_step(prepared.data_dir, venue) for venue in BOOK_VENUES}
    for intent in ids:
        events = by_intent[intent]
        topics = [e["topic"] for e in events]
        assert topics[:5] == COMPLETED_PATH[:5], (intent, topics)
        assert topics[-1] == "exec.completed", (
            intent,
            [orjson.loads(e["payload"]) for e in events[-2:]],
        )
        plan = orjson.loads(next(e["payload"] for e in events if e["topic"] == "plan.created"))
        steps = plan["plan"]["steps"]
        assert steps, plan
        assert all(s["kind"] == "order" for s in steps), steps
        filled = [orjson.loads(e["payload"]) for e in events if e["topic"] == "exec.step_filled"]
        assert sorted(f["stepId"] for f in filled) == sorted(s["stepId"] for s in steps)
        for fill in filled:
            # Each child order is in its venue's own ledger, filled by exactly one order.
            assert fill["venue"] in BOOK_VENUES
            assert fills[fill["venue"]].get(fill["stepId"]) == 1, (fill, fills[fill["venue"]])


def _book_fills(data_dir: Path, venue: str) -> dict[str, tuple[str, Decimal, Decimal]]:
    """Per client order id (step id) in ``venue``'s ledger: (side, WETH, USDC with fees:
    paid by a buy, received by a sell)."""
    path = data_dir / "venues" / venue / "ledger.sqlite"
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT f.client_order_id, o.side, SUM(f.qty), SUM(CAST(f.notional AS INTEGER)), "
            "SUM(CAST(f.taker_fee AS INTEGER)) FROM fills f "
            "JOIN orders o ON o.order_id = f.taker_order_id "
            "WHERE f.client_order_id IS NOT NULL GROUP BY f.client_order_id, o.side"
        ).fetchall()
    finally:
        db.close()
    out = {}
    for step, side, lots, notional, fee in rows:
        quote = notional + fee if side == "buy" else notional - fee
        out[step] = (side, lots * LOTS[venue], Decimal(quote).scaleb(-6))
    return out


def _sim_fills(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Per step id in the sim venue's ledger: (amount in, amount out) in base units."""
    path = data_dir / "venues" / "sim" / "ledger.sqlite"
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT step_id, amount_in, amount_out FROM fills").fetchall()
    finally:
        db.close()
    fills: dict[str, tuple[int, int]] = {}
    for step, amount_in, amount_out in rows:
        assert step not in fills, f"{step} filled twice in the sim ledger"
        fills[step] = (int(amount_in), int(amount_out))
    return fills


async def test_intents_on_pools_and_books_split_across_both_and_match_the_ledgers(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection, book_topology: Path
) -> None:
    topology = load_topology(book_topology)
    weth, usdc = topology.asset("WETH"), topology.asset("USDC")
    run = uuid.uuid4().hex[:8]
    bodies = [
        submission(
            topology,
            ("ACQUIRE", "DISPOSE")[i % 2],
            "WETH",
            "USDC",
            "10",
            strategy_id=f"split-{run}",
            client_intent_id=f"s{i}",
            max_slippage="0.02",
            venues=["sim", *BOOK_VENUES],
        )
        for i in range(4)
    ]
    await _snapshots_published(prepared, BOOK_VENUES)
    await asyncio.sleep(1)
    # One at a time: plans of one batch are made on the same book levels (book plans are not
    # pending flow), and the makers refill a level only at their next refresh (500 ms).
    ids = []
    for body in bodies:
        ids += await _submit(prepared, [body])
        await wait_until_finished(prepared.postgres, ids[-1:], timeout=120, pool=workers)
        await asyncio.sleep(1.5)  # the makers' refresh, published, and read by the feed
    by_intent = await settled_events(db, ids)
    sim = _sim_fills(prepared.data_dir)
    books = {venue: _book_fills(prepared.data_dir, venue) for venue in BOOK_VENUES}
    for intent in ids:
        events = by_intent[intent]
        assert events[-1]["topic"] == "exec.completed", (
            intent,
            [orjson.loads(e["payload"]) for e in events[-2:]],
        )
        plan = orjson.loads(next(e["payload"] for e in events if e["topic"] == "plan.created"))
        kinds = {(s["venue"], s["kind"]) for s in plan["plan"]["steps"]}
        # Fills on both kinds of venue: a swap on the pool and child orders on the books.
        assert ("sim", "swap") in kinds, kinds
        assert any(kind == "order" for _venue, kind in kinds), kinds
        filled = [orjson.loads(e["payload"]) for e in events if e["topic"] == "exec.step_filled"]
        assert sorted(f["stepId"] for f in filled) == sorted(
            s["stepId"] for s in plan["plan"]["steps"]
        )
        for fill in filled:
            amount_in, amount_out = Decimal(fill["amountIn"]), Decimal(fill["amountOut"])
            if fill["venue"] == "sim":
                ins = {"WETH": weth, "USDC": usdc}
                assert sim[fill["stepId"]] == (
                    ins[fill["assetIn"]].to_base_units(amount_in),
                    ins[fill["assetOut"]].to_base_units(amount_out),
                ), fill
                continue
            side, base, quote = books[fill["venue"]][fill["stepId"]]
            if side == "buy":
                assert (fill["assetOut"], base, quote) == ("WETH", amount_out, amount_in), fill
            else:
                assert (fill["assetIn"], base, quote) == ("WETH", amount_in, amount_out), fill
        completed = orjson.loads(events[-1]["payload"])
        assert (
            Decimal(completed["amountOut" if plan["intent"]["type"] == "ACQUIRE" else "amountIn"])
            == 10
        )
