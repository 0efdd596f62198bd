"""Planning on books: the sweep's child orders per venue, with fees, ticks and lots.

Expected figures are worked out by hand for one book, and for random books against an
independent walk of each single venue (the plan is never worse than the best single book);
the planner gives the same plans on the Rust operators and on their twin.
"""

from __future__ import annotations

import random
from decimal import Decimal
from types import ModuleType

import pytest

from pipeline import ops
from pipeline.market.board import BookBoard
from pipeline.models.events import PlanCreated, PlanRejected
from pipeline.models.intent import Intent
from pipeline.models.market import BookLevel, BookSnapshot
from pipeline.models.plan import StepKind, SwapMode
from pipeline.ops import twin
from pipeline.samples import submission
from pipeline.stages.book_planning import plan_on_books
from pipeline.topology import load_topology

TOPOLOGY = load_topology()
T0 = 1_700_000_000_000
FEES = {"clob_a": 500, "clob_b": 1000}
TICKS = {"clob_a": Decimal("0.01"), "clob_b": Decimal("0.05")}
LOTS = {"clob_a": Decimal("0.0001"), "clob_b": Decimal("0.001")}


def decimals(symbol: str) -> int | None:
    return TOPOLOGY.asset(symbol).decimals


def snapshot(venue: str, bids: dict[str, str], asks: dict[str, str]) -> BookSnapshot:
    def levels(side: dict[str, str]) -> tuple[BookLevel, ...]:
        return tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in side.items())

    return BookSnapshot(
        venue=venue,
        market_id="WETH-USDC",
        chain_id=31337,
        base="WETH",
        quote="USDC",
        tick_size=TICKS[venue],
        lot_size=LOTS[venue],
        maker_fee=0,
        taker_fee=FEES[venue],
        seq=1,
        bids=levels(bids),
        asks=levels(asks),
        timestamp_ms=0,
    )


def intent(
    kind: str,
    subject: str,
    counter: str,
    amount: str,
    slippage: str = "0.01",
    allowed: list[str] | None = None,
) -> Intent:
    data = submission(TOPOLOGY, kind, subject, counter, amount, max_slippage=slippage)
    if allowed is not None:
        data["constraints"]["allowedVenues"] = allowed
    return Intent.model_validate(
        {**data, "id": "intent-01HF7YAT00YKXV1TE2NN8PMX9W", "createdAtMs": T0}
    )


def board(module: ModuleType, *snapshots: BookSnapshot) -> BookBoard:
    b = BookBoard(decimals, module)
    for s in snapshots:
        b.apply(s)
    return b


A = snapshot(
    "clob_a", {"2999.00": "1", "2998.00": "4"}, {"3000.00": "1", "3000.50": "1", "3001.00": "5"}
)
B = snapshot("clob_b", {"2999.50": "1", "2997.00": "3"}, {"2999.00": "1", "3000.00": "2"})


def plan_of(result: PlanCreated | PlanRejected) -> PlanCreated:
    assert isinstance(result, PlanCreated), result
    return result


@pytest.mark.parametrize("module", [ops, twin.books], ids=["rust", "twin"])
def test_a_buy_takes_the_cheapest_units_after_fees_across_venues(module: ModuleType) -> None:
    book = board(module, A, B).book("WETH", "USDC")
    assert book is not None
    plan = plan_of(plan_on_books(intent("ACQUIRE", "WETH", "USDC", "3"), 5, book)).plan
    # all-in asks: a 3001.5, b 2999 * 1.001 = 3001.999, a 3000.5 * 1.0005 = 3002.00025, ...
    by_venue = {s.venue: s for s in plan.steps}
    a, b = by_venue["clob_a"], by_venue["clob_b"]
    assert (a.amount_out, b.amount_out) == (Decimal(2), Decimal(1))
    assert a.amount_in == Decimal("3001.5") + Decimal("3002.00025")
    assert b.amount_in == Decimal("3001.999")
    assert all(s.kind is StepKind.ORDER and s.mode is SwapMode.EXACT_OUT for s in plan.steps)
    assert a.max_in == (a.amount_in * Decimal("1.01")).quantize(
        Decimal("0.000001"), rounding="ROUND_CEILING"
    )
    assert [(leg.pool_id, leg.venue, leg.token_in, leg.token_out) for leg in a.legs] == [
        ("WETH-USDC", "clob_a", "USDC", "WETH")
    ]
    assert plan.estimated_out == Decimal(3)
    # fees: 0.05 % of 6000.50 and 0.10 % of 2999
    assert plan.estimated_cost == Decimal("3.00025") + Decimal("2.999")


def test_a_sell_takes_the_best_bids_after_fees() -> None:
    book = board(ops, A, B).book("WETH", "USDC")
    assert book is not None
    plan = plan_of(plan_on_books(intent("DISPOSE", "WETH", "USDC", "6"), 5, book)).plan
    # all-in bids: a 2999 * 0.9995 = 2997.5005 (1), a 2998 * 0.9995 = 2996.501 (4), then
    # b 2999.5 * 0.999 = 2996.5005: b's higher price is worth less after its fee.
    by_venue = {s.venue: s for s in plan.steps}
    assert {v: s.amount_in for v, s in by_venue.items()} == {"clob_a": 5, "clob_b": 1}
    assert by_venue["clob_a"].amount_out == Decimal("2997.5005") + 4 * Decimal("2996.501")
    assert by_venue["clob_b"].amount_out == Decimal("2996.5005")
    assert by_venue["clob_b"].min_out == (Decimal("2996.5005") * Decimal("0.99")).quantize(
        Decimal("0.000001"), rounding="ROUND_FLOOR"
    )
    assert all(s.mode is SwapMode.EXACT_IN for s in plan.steps)


def test_a_part_below_a_venues_lot_goes_to_a_venue_with_a_finer_lot() -> None:
    deeper = snapshot(
        "clob_a", {"2999.00": "1"}, {"3000.00": "1", "3000.50": "1", "3001.00": "5", "3010.00": "5"}
    )
    book = board(ops, deeper, B).book("WETH", "USDC")
    assert book is not None
    # The sweep of 9.0005: a 1, b 1, a 1, a 5, then 1.0005 of b's 3000 level (3003 all-in);
    # b's lot is 0.001, so its 0.0005 moves to a's next level (3010).
    plan = plan_of(plan_on_books(intent("ACQUIRE", "WETH", "USDC", "9.0005"), 5, book)).plan
    amounts = {s.venue: s.amount_out for s in plan.steps}
    assert amounts == {"clob_a": Decimal("7.0005"), "clob_b": Decimal(2)}
    a = next(s for s in plan.steps if s.venue == "clob_a")
    exact = (
        Decimal("3000")
        + Decimal("3000.5")
        + 5 * Decimal("3001")
        + Decimal("0.0005") * Decimal("3010")
    ) * Decimal("1.0005")
    assert a.amount_in == exact.quantize(Decimal("0.000001"), rounding="ROUND_CEILING")


def test_refusals_say_why() -> None:
    book = board(ops, A, B).book("WETH", "USDC")
    assert book is not None
    quote = plan_on_books(intent("ACQUIRE", "USDC", "WETH", "100"), 5, book)
    assert isinstance(quote, PlanRejected)
    assert quote.reason == "book_amount_in_quote"
    deep = plan_on_books(intent("ACQUIRE", "WETH", "USDC", "50"), 5, book)
    assert isinstance(deep, PlanRejected)
    assert deep.reason == "no_route"
    steep = plan_on_books(intent("ACQUIRE", "WETH", "USDC", "9", slippage="0.0001"), 5, book)
    assert isinstance(steep, PlanRejected)
    assert steep.reason == "price_impact"
    only_b = plan_of(
        plan_on_books(intent("ACQUIRE", "WETH", "USDC", "2", allowed=["clob_b"]), 5, book)
    ).plan
    assert {s.venue for s in only_b.steps} == {"clob_b"}


def _random_book(rng: random.Random, venue: str, mid: Decimal) -> BookSnapshot:
    tick, lot = TICKS[venue], Decimal("0.001")  # sizes alike on both venues
    # Mids within the venues' fee difference (1.5 USDC) or so: both venues in many sweeps.
    mid += rng.randint(-60, 60) * Decimal("0.05")
    bids, asks = {}, {}
    for i in range(rng.randint(1, 12)):
        bids[str(mid - tick * (1 + i * rng.randint(1, 4) + i))] = str(lot * rng.randint(1, 900))
        asks[str(mid + tick * (1 + i * rng.randint(1, 4) + i))] = str(lot * rng.randint(1, 900))
    return snapshot(venue, bids, asks)


def _single(snap: BookSnapshot, buy: bool, qty: Decimal) -> Decimal | None:
    """Independently: what one venue alone costs (buy) or pays (sell), fees in."""
    if qty % snap.lot_size:
        return None
    rate = Decimal(snap.taker_fee) / 1_000_000
    left, money = qty, Decimal(0)
    for level in snap.asks if buy else snap.bids:
        n = min(left, level.size)
        money += n * level.price
        left -= n
    if left:
        return None
    return money * (1 + rate) if buy else money * (1 - rate)


@pytest.mark.parametrize("seed", range(100))
def test_never_worse_than_the_best_single_book_and_rust_equals_twin(seed: int) -> None:
    rng = random.Random(seed)
    mid = Decimal(3000 + rng.randint(-20, 20))
    snaps = [_random_book(rng, "clob_a", mid), _random_book(rng, "clob_b", mid)]
    kind = rng.choice(["ACQUIRE", "DISPOSE"])
    amount = Decimal(rng.randint(1, 30000)) * Decimal("0.0001")
    plans = []
    for module in (ops, twin.books):
        book = board(module, *snaps).book("WETH", "USDC")
        assert book is not None
        plans.append(plan_on_books(intent(kind, "WETH", "USDC", str(amount), "0.5"), 5, book))
    assert plans[0] == plans[1]
    buy = kind == "ACQUIRE"
    singles = [m for m in (_single(s, buy, amount) for s in snaps) if m is not None]
    if isinstance(plans[0], PlanRejected):
        assert plans[0].reason in ("no_route", "price_impact")
        if plans[0].reason == "no_route":
            assert singles == []
        return
    plan = plans[0].plan
    assert sum(s.amount_out if buy else s.amount_in for s in plan.steps) == amount
    money = sum((s.amount_in if buy else s.amount_out) for s in plan.steps)
    unit = Decimal("0.000001") * len(plan.steps)  # each child rounded to USDC's decimals
    for single in singles:
        assert money <= single + unit if buy else money >= single - unit


def test_the_random_cases_exercise_splits_across_venues() -> None:
    """The property above means little if every plan used one venue (36 of 100 split)."""
    splits = 0
    for seed in range(100):
        rng = random.Random(seed)
        mid = Decimal(3000 + rng.randint(-20, 20))
        snaps = [_random_book(rng, "clob_a", mid), _random_book(rng, "clob_b", mid)]
        kind = rng.choice(["ACQUIRE", "DISPOSE"])
        amount = Decimal(rng.randint(1, 30000)) * Decimal("0.0001")
        book = board(ops, *snaps).book("WETH", "USDC")
        assert book is not None
        result = plan_on_books(intent(kind, "WETH", "USDC", str(amount), "0.5"), 5, book)
        splits += isinstance(result, PlanCreated) and len(result.plan.steps) > 1
    assert splits >= 20
