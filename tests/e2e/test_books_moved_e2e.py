"""A book that moves between plan and execution, end to end on the real broker: the IOC
leaves the rest unfilled and the outcome follows the intent's ``onPartialFill`` -- ``FAIL``:
``exec.failed`` with the reason; ``REPLAN``: the rest re-planned on the books as they are and
filled -- with every fill equal to the venues' own ledgers.

How the book is made to move at the right moment, with nothing mocked: the venue here is the
clob plugin's ``clob`` instance (the name no other module's venue has: books of one name from
two ledgers on one topic would mix in a feed), configured like clob_a but with no maker (its
book holds only what this test places) and a latency of 3 s (an order reaches its book 3 s
after it is submitted, as across a slow link).  The test lays out asks, waits until the
worker has planned and sent its child order (``exec.step_submitted`` on the broker), then
cancels one of the levels the plan counted on, through its own ``ClobVenue`` on the same
ledger (a latency of 0 for its own orders).  When the child reaches the book it finds half of
what the plan saw.  For ``REPLAN`` a deeper level at 3,010 is there too: the rest goes to it.
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.client import predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.intent_ids import submission_key
from pipeline.market.books import TOPIC as BOOKS_TOPIC
from pipeline.plugins.venue import VenueContext
from pipeline.samples import submission
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from plugins.clob_venue import ClobVenue, ClobVenueConfig, Side
from tests.e2e.checks import settled_events

INPUT_TOPIC = "sep.intents.submitted"
LATENCY_MS = 3000
VENUE = "clob"
LOT = Decimal("0.0001")  # clob_a's, which the venue copies


@pytest.fixture(scope="module")
def moved_topology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load(Path(DEFAULT_PATH).read_text())
    venues = data["plugins"]["venues"]
    config = copy.deepcopy(venues["clob_a"]["config"])
    config["latency_ms"] = LATENCY_MS
    config["markets"]["WETH-USDC"]["maker"] = None
    venues[VENUE] = {"enabled": True, "config": config}
    path = tmp_path_factory.mktemp("moved") / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def workers(prepared: Settings, moved_topology: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(
        prepared, count=1, extra_env={"SEP_TOPOLOGY": str(moved_topology)}, name="moved"
    )
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="module")
async def venue(
    workers: WorkerPool, prepared: Settings, moved_topology: Path
) -> AsyncIterator[ClobVenue]:
    """The venue as the test reaches it: the workers' ledger, its own orders without latency."""
    topology = load_topology(moved_topology)
    assets = {a.symbol: a for a in topology.assets}
    raw = topology.plugins.venues[VENUE].config
    config = ClobVenueConfig.model_validate({**raw, "latency_ms": 0}, context={"assets": assets})
    made = ClobVenue(VENUE, config, VenueContext(prepared.data_dir / "venues" / VENUE, assets))
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


async def _book_shows(
    settings: Settings, venue: str, prices: set[str], within_s: float = 60
) -> None:
    """Wait until ``venue``'s published book (``sep.market.books``) has asks at ``prices``."""
    consumer = AIOKafkaConsumer(
        BOOKS_TOPIC, bootstrap_servers=settings.kafka, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    asks: dict[Decimal, Decimal] = {}
    wanted = {Decimal(p) for p in prices}
    try:
        async with asyncio.timeout(within_s):
            while not wanted <= {p for p, s in asks.items() if s > 0}:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        m = orjson.loads(record.value or b"{}")
                        if m.get("venue") != venue:
                            continue
                        if m.get("kind") == "snapshot":
                            asks = {}
                        for level in m.get("asks", []):
                            asks[Decimal(level["price"])] = Decimal(level["size"])
    finally:
        await consumer.stop()


class Executions:
    """Follows the execute stage's topic from now on, to see a plan's child sent."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka, group_id=None, fetch_max_wait_ms=50
        )
        self._topic = topic
        self._partitions = partitions

    async def __aenter__(self) -> Executions:
        await self._consumer.start()
        # Every partition the topology gives it (a fresh consumer's metadata may not know them).
        tps = [TopicPartition(self._topic, p) for p in range(self._partitions)]
        self._consumer.assign(tps)
        for tp, end in (await self._consumer.end_offsets(tps)).items():
            self._consumer.seek(tp, end)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def wait_for(self, intent_id: str, topic: str, within_s: float = 60) -> dict[str, Any]:
        async with asyncio.timeout(within_s):
            while True:
                for records in (await self._consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        event = orjson.loads(record.value or b"{}")
                        if (event.get("correlationId"), event.get("topic")) == (intent_id, topic):
                            return dict(event["payload"])


async def _submit(settings: Settings, body: dict[str, Any]) -> str:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka)
    await producer.start()
    try:
        stamp = time.time_ns() // 1_000_000
        await producer.send_and_wait(
            INPUT_TOPIC,
            orjson.dumps(body),
            key=submission_key(str(body["strategyId"]), str(body["clientIntentId"])).encode(),
            timestamp_ms=stamp,
        )
    finally:
        await producer.stop()
    return predicted_intent_id(stamp, str(body["strategyId"]), str(body["clientIntentId"]))


def _ledger_fills(data_dir: Path) -> dict[str, tuple[str, Decimal, Decimal, Decimal]]:
    """Per client order id (step id) in the venue's ledger: (side, WETH, USDC with fees --
    paid by a buy, received by a sell --, the taker fee in USDC)."""
    path = data_dir / "venues" / VENUE / "ledger.sqlite"
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
        out[step] = (side, lots * LOT, Decimal(quote).scaleb(-6), Decimal(fee).scaleb(-6))
    return out


async def _moved_run(
    prepared: Settings,
    moved_topology: Path,
    venue: ClobVenue,
    policy: str,
    deeper: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One ACQUIRE of 1 WETH whose level at 2,991 is cancelled after its child is sent
    (``deeper``: 2 WETH rest at 3,010 behind it): its events' (topic + payload) and fills."""
    topology = load_topology(moved_topology)
    kept = await venue.place_order("WETH-USDC", Side.SELL, Decimal("0.5"), Decimal("2990"))
    pulled = await venue.place_order("WETH-USDC", Side.SELL, Decimal("0.5"), Decimal("2991"))
    assert kept.status == pulled.status == "open", (kept, pulled)
    prices = {"2990", "2991"}
    if deeper:
        await venue.place_order("WETH-USDC", Side.SELL, Decimal("2"), Decimal("3010"))
        prices.add("3010")
    await _book_shows(prepared, VENUE, prices)
    await asyncio.sleep(1)  # the worker's book feed reads it a poll after it is published
    body = submission(
        topology,
        "ACQUIRE",
        "WETH",
        "USDC",
        "1",
        strategy_id=f"moved-{uuid.uuid4().hex[:8]}",
        client_intent_id=policy,
        max_slippage="0.02",
        venues=[VENUE],
    )
    body["constraints"]["onPartialFill"] = policy
    topic = topology.stage("execute").events_topic
    partitions = topology.topic(topic).partitions
    async with Executions(prepared, topic, partitions) as executions:
        intent_id = await _submit(prepared, body)
        sent = await executions.wait_for(intent_id, "exec.step_submitted")
        # The plan took both cheap levels: one child of 1 WETH, limit 2,991.
        assert (sent["venue"], Decimal(sent["limitPrice"])) == (VENUE, Decimal(2991)), sent
        assert Decimal(sent["asked"]) == 1, sent
        # The book moves: the 2,991 level the plan counted on is withdrawn before the child,
        # sent just now, reaches the book (LATENCY_MS after it was sent).
        cancelled = await venue.cancel(pulled.order_ref)
        assert cancelled.status == "cancelled", cancelled
    await wait_until_finished(prepared.postgres, [intent_id], timeout=120)
    conn = await asyncpg.connect(prepared.postgres)
    try:
        stored = (await settled_events(conn, [intent_id]))[intent_id]
    finally:
        await conn.close()
    events = [{"topic": e["topic"], **orjson.loads(e["payload"])} for e in stored]
    fills = [e for e in events if e["topic"] == "exec.step_filled"]
    # Every fill, with its fee, is what the venue's own ledger holds, once.
    ledger = _ledger_fills(prepared.data_dir)
    for fill in fills:
        side, weth, usdc, fee = ledger[fill["stepId"]]
        assert side == "buy"
        assert (Decimal(fill["amountOut"]), Decimal(fill["amountIn"])) == (weth, usdc), fill
        assert (Decimal(fill["fee"]), fill["feeAsset"]) == (fee, "USDC"), fill
    assert all(venue.fill_counts().get(f["stepId"]) == 1 for f in fills), venue.fill_counts()
    return events, fills


async def test_fail_ends_the_intent_with_the_reason_and_the_fill_stands(
    prepared: Settings, moved_topology: Path, venue: ClobVenue
) -> None:
    events, fills = await _moved_run(prepared, moved_topology, venue, "FAIL", deeper=False)
    assert events[-1]["topic"] == "exec.failed", events[-1]
    assert "exec.completed" not in [e["topic"] for e in events]
    reason = events[-1]["reason"]
    assert reason.startswith(f"partial_fill: step 1 on {VENUE} filled 0.5 of 1 WETH"), reason
    assert "the rest (0.5 WETH) is not traded (onPartialFill FAIL)" in reason
    assert [(f["venue"], Decimal(f["amountOut"])) for f in fills] == [(VENUE, Decimal("0.5"))]


async def test_replan_fills_the_rest_on_the_book_as_it_is(
    prepared: Settings, moved_topology: Path, venue: ClobVenue
) -> None:
    events, fills = await _moved_run(prepared, moved_topology, venue, "REPLAN", deeper=True)
    assert events[-1]["topic"] == "exec.completed", events[-1]
    plan_id = next(e["plan"]["id"] for e in events if e["topic"] == "plan.created")
    by_step = {f["stepId"]: f for f in fills}
    assert set(by_step) == {f"{plan_id}-1", f"{plan_id}-r1"}
    assert Decimal(by_step[f"{plan_id}-1"]["amountOut"]) == Decimal("0.5")
    # The rest was re-planned on the book as it now is: the 3,010 level.
    rest = by_step[f"{plan_id}-r1"]
    assert Decimal(rest["amountOut"]) == Decimal("0.5")
    submitted = next(
        e for e in events if e["topic"] == "exec.step_submitted" and e["stepId"] == rest["stepId"]
    )
    assert (Decimal(submitted["limitPrice"]), Decimal(submitted["asked"])) == (3010, Decimal("0.5"))
    completed = events[-1]
    assert Decimal(completed["amountOut"]) == 1
    assert Decimal(completed["amountIn"]) == sum(Decimal(f["amountIn"]) for f in fills)
