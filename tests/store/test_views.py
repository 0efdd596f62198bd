"""The documents the API serves, from what the projection writes (pure: the read model's
rule -- per field, the event of the highest seq wins -- applied in Python): a plan on books
shows its child orders, re-planned ones included, with venue, limit, asked, filled, fee and
status; the intent's fills carry their fees; fills per venue sum them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.models.events import Event
from pipeline.store.projection import project
from pipeline.store.venue_fills import per_venue
from pipeline.store.views import intent_document, plan_document
from plugins.clob_venue import ClobVenue
from tests.store.book_lifecycle import clob_venues, moved_book_lifecycle


@pytest.fixture
async def venues(tmp_path: Path) -> AsyncIterator[dict[str, ClobVenue]]:
    async with clob_venues(tmp_path) as made:
        yield made


def projected(events: list[Event]) -> tuple[dict[str, str], dict[str, str]]:
    """The intent's and its plan's hashes as the read model leaves them (any order in)."""
    intent: dict[str, tuple[int, str]] = {}
    plan: dict[str, tuple[int, str]] = {}
    for event in reversed(events):  # out of order on purpose: the guard decides
        p = project(event)
        for into, fields in ((intent, p.intent), (plan, p.plan)):
            for k, v in fields.items():
                if k not in into or into[k][0] < p.seq:
                    into[k] = (p.seq, v)
    return {k: v for k, (_, v) in intent.items()}, {k: v for k, (_, v) in plan.items()}


def ledger_fills(venues: dict[str, ClobVenue]) -> dict[str, tuple[str, Decimal, Decimal]]:
    """Per step id: (venue, WETH bought, taker fee in USDC) in the venues' own ledgers."""
    out = {}
    for venue in venues.values():
        rows = venue.ledger._db.execute(
            "SELECT client_order_id, SUM(qty), SUM(CAST(taker_fee AS INTEGER)) FROM fills "
            "WHERE client_order_id IS NOT NULL GROUP BY client_order_id"
        ).fetchall()
        for step, lots, fee in rows:
            out[step] = (venue.name, lots * Decimal("0.001"), Decimal(fee).scaleb(-6))
    return out


async def test_child_orders_show_what_each_asked_and_got_with_its_fee(
    venues: dict[str, ClobVenue],
) -> None:
    events = await moved_book_lifecycle(venues, 1)
    assert events[-1].topic == "exec.completed", events[-1].payload
    intent_raw, plan_raw = projected(events)
    plan = plan_document(intent_raw["planId"], plan_raw)
    steps: dict[str, dict[str, Any]] = {s["stepId"]: s for s in plan["steps"]}
    planned = events[4].payload["plan"]["steps"]
    replanned = f"{plan['id']}-r1"
    assert set(steps) == {s["stepId"] for s in planned} | {replanned}
    ledger = ledger_fills(venues)
    assert set(ledger) == set(steps)
    for step_id, step in steps.items():
        venue, weth, fee = ledger[step_id]
        assert (step["kind"], step["status"]) == ("order", "filled")
        assert step["venue"] == venue
        assert (step["askedAsset"], Decimal(step["filled"])) == ("WETH", weth)
        assert (Decimal(step["fee"]), step["feeAsset"]) == (fee, "USDC")
        assert Decimal(step["limitPrice"]) > 0
    first = next(s for s in planned if s["venue"] == "clob_a")
    a = steps[first["stepId"]]
    # clob_a's child asked 2 at a limit of 3,010 and got 1: the rest went to clob_b.
    assert (Decimal(a["asked"]), Decimal(a["limitPrice"]), Decimal(a["filled"])) == (2, 3010, 1)
    r1 = steps[replanned]
    assert (r1["venue"], Decimal(r1["asked"]), Decimal(r1["filled"])) == ("clob_b", 1, 1)
    assert Decimal(plan["fees"]["USDC"]) == sum(fee for _, _, fee in ledger.values())
    # Three children filled, the re-planned one included: the whole plan.
    assert (plan["stepCount"], plan["filledSteps"], plan["progress"]) == (3, 3, "1.0000")

    doc = intent_document(events[0].correlation_id, intent_raw)
    assert {f["stepId"]: (Decimal(f["fee"]), f["feeAsset"]) for f in doc["fills"]} == {
        s: (fee, "USDC") for s, (_, _, fee) in ledger.items()
    }


async def test_fills_per_venue_sum_the_fills_and_their_fees(
    venues: dict[str, ClobVenue],
) -> None:
    events = await moved_book_lifecycle(venues, 2)
    fills = [e.payload for e in events if e.topic == "exec.step_filled"]
    ledger = ledger_fills(venues)
    swap = {  # a pool's fill: no itemised fee
        "venue": "sim",
        "stepId": "x",
        "assetIn": "WETH",
        "assetOut": "USDC",
        "amountIn": "1",
        "amountOut": "2990.5",
    }
    table = {v["venue"]: v for v in per_venue([*fills, swap])}
    assert set(table) == {"clob_a", "clob_b", "sim"}
    for name in ("clob_a", "clob_b"):
        mine = [s for s, (v, _, _) in ledger.items() if v == name]
        assert table[name]["fills"] == table[name]["itemisedFills"] == len(mine)
        assert Decimal(table[name]["received"]["WETH"]) == sum(ledger[s][1] for s in mine)
        assert Decimal(table[name]["fees"]["USDC"]) == sum(ledger[s][2] for s in mine)
    assert table["sim"] == {
        "venue": "sim",
        "fills": 1,
        "spent": {"WETH": "1"},
        "received": {"USDC": "2990.5"},
        "fees": {},
        "itemisedFills": 0,
        "unitemisedFills": 1,
    }
