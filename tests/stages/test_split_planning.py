"""One route over pools and books: the water-fill on the Rust operators and on their twin, the
pool curve as levels, and the planner's choice between pools only, books only and a split.

Properties (hypothesis, random books and pools): the water-fill gives the same shares on Rust
and on the twin; the plan taken is never worth less than the best single-venue plan after
fees and gas, and is made whenever a single-venue plan is.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import ops
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.models.events import PlanCreated, PlanRejected
from pipeline.models.intent import Intent
from pipeline.models.market import BookLevel, BookSnapshot, PoolState
from pipeline.models.plan import StepKind, SwapMode
from pipeline.ops import twin
from pipeline.plugins.venue import Routing
from pipeline.samples import submission
from pipeline.stages.book_planning import plan_on_books
from pipeline.stages.plan import plan_intent
from pipeline.stages.route_graphs import VenueGraphs
from pipeline.stages.split_planning import POOLS, SplitPlanner, water_fill
from pipeline.topology import load_topology

TOPOLOGY = load_topology()
T0 = 1_700_000_000_000
FEES = {"clob_a": 500, "clob_b": 1000}
TICKS = {"clob_a": Decimal("0.01"), "clob_b": Decimal("0.05")}
LOTS = {"clob_a": Decimal("0.0001"), "clob_b": Decimal("0.001")}


def decimals(symbol: str) -> int | None:
    return TOPOLOGY.asset(symbol).decimals


def snapshot(
    venue: str, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]
) -> BookSnapshot:
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
        bids=tuple(BookLevel(price=p, size=s) for p, s in bids),
        asks=tuple(BookLevel(price=p, size=s) for p, s in asks),
        timestamp_ms=0,
    )


def book_of(module: ModuleType, *snapshots: BookSnapshot) -> AggregatedBook:
    board = BookBoard(decimals, module)
    for s in snapshots:
        board.apply(s)
    book = board.book("WETH", "USDC")
    assert book is not None
    return book


def pool(weth: str, usdc: str, fee: int = 500) -> PoolState:
    return PoolState(
        pool_id="sim-weth-usdc",
        venue="sim",
        chain_id=31337,
        token0="WETH",
        token1="USDC",
        reserve0=TOPOLOGY.asset("WETH").to_base_units(Decimal(weth)),
        reserve1=TOPOLOGY.asset("USDC").to_base_units(Decimal(usdc)),
        fee=fee,
    )


def intent(kind: str, amount: str, slippage: str = "0.05") -> Intent:
    data = submission(TOPOLOGY, kind, "WETH", "USDC", amount, max_slippage=slippage)
    return Intent.model_validate(
        {**data, "id": "intent-01HF7YAT00YKXV1TE2NN8PMX9W", "createdAtMs": T0}
    )


def ladder(start: str, step: str, sizes: list[str]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(start) + k * Decimal(step), Decimal(size)) for k, size in enumerate(sizes)]


A = snapshot(
    "clob_a",
    ladder("2999.00", "-0.50", ["1", "1", "2"]),
    ladder("3000.00", "0.50", ["1", "1", "2"]),
)
B = snapshot(
    "clob_b",
    ladder("2999.50", "-1.00", ["1", "2"]),
    ladder("2999.50", "1.00", ["0.5", "2"]),
)


# ----------------------------------------------------------------------------- water-fill

E18, E6 = 10**18, 10**6


@pytest.mark.parametrize("module", [ops, twin.books], ids=["rust", "twin"])
def test_the_water_fill_takes_the_cheapest_units_across_books_and_the_pool(
    module: ModuleType,
) -> None:
    book = book_of(module, A, B)
    # The pool's curve in base units: 2 WETH for 6003.20 USDC (3001.60 a WETH, all-in), then
    # 1 for 3005.  All-in asks: a 3000 * 1.0005 = 3001.50 (1), a 3000.50 -> 3002.00025 (1),
    # b 2999.50 * 1.001 = 3002.4995 (0.5), ...  A buy of 4 takes a's 1, the pool's 2, a's
    # next 1; of 4.5, b's 0.5 as well.
    curve = [(2 * E18, 600320 * E6 // 100), (3 * E18, 900820 * E6 // 100)]
    assert water_fill(book, "buy", 4 * E18, curve, 6) == {POOLS: 2 * E18, "clob_a": 2 * E18}
    assert water_fill(book, "buy", 45 * E18 // 10, curve, 6) == {
        POOLS: 2 * E18,
        "clob_a": 2 * E18,
        "clob_b": E18 // 2,
    }
    assert water_fill(book, "buy", 100 * E18, curve, 6) is None
    # Only the allowed venues' books: the pool's 2, then b's 0.5 and 1.5 of its 3003.5005.
    assert water_fill(book, "buy", 4 * E18, curve, 6, ["clob_b"]) == {
        POOLS: 2 * E18,
        "clob_b": 2 * E18,
    }


def test_a_pool_segment_is_priced_against_the_taker_in_the_books_units() -> None:
    book = book_of(ops, A)
    # 1 WETH for 3000 USDC, the next for 3010: 3000 / 1e-8 and 3010 / 1e-8 price units.
    merged = book.book
    scale = 10**12 * 10**8  # 10**(18 - 6) / 1e-8
    done = ops.water_fill(merged, "buy", 1, [(E18, 3000 * E6), (2 * E18, 6010 * E6)], scale, 1)
    unit = book.price_unit
    assert done.pool_levels == ((int(3000 / unit), E18), (int(3010 / unit), E18))


price_steps = st.integers(min_value=1, max_value=400)
sizes = st.integers(min_value=1, max_value=40)


@st.composite
def random_book(draw: st.DrawFn, module: ModuleType) -> AggregatedBook:
    snaps = []
    for venue in ("clob_a", "clob_b"):
        tick, lot = TICKS[venue], LOTS[venue]
        mid = Decimal(3000) + draw(st.integers(-20, 20))
        asks, bids = [], []
        price = mid + tick * draw(price_steps)
        for _ in range(draw(st.integers(1, 6))):
            asks.append((price, lot * 100 * draw(sizes)))
            price += tick * draw(price_steps)
        price = mid - tick * draw(price_steps)
        for _ in range(draw(st.integers(1, 6))):
            bids.append((price, lot * 100 * draw(sizes)))
            price -= tick * draw(price_steps)
        snaps.append(snapshot(venue, bids, asks))
    return book_of(module, *snaps)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), side=st.sampled_from(["buy", "sell"]))
def test_rust_and_twin_water_fill_alike(data: st.DataObject, side: str) -> None:
    seed = data.draw(st.integers(0, 2**32))
    rust = data.draw(random_book(ops), label="book")
    # The same book on the twin: rebuilt from the same snapshots.
    snaps = [
        snapshot(
            v,
            [(vb.raw_bids[p], Decimal(s).scaleb(-rust.size_decimals)) for p, s in vb.book.bids],
            [(vb.raw_asks[p], Decimal(s).scaleb(-rust.size_decimals)) for p, s in vb.book.asks],
        )
        for v, vb in sorted(rust.venues.items())
    ]
    twinned = book_of(twin.books, *snaps)
    start = 3000 + seed % 20 - 10
    step = 1 + seed % 7
    curve, x, c = [], 0, 0
    for k in range(5):
        price = start + k * step * (1 if side == "buy" else -1)  # USDC a WETH
        dx = 10**17 * (1 + (seed >> k) % 9)
        x, c = x + dx, c + price * dx // 10**12  # USDC base units for dx wei
        curve.append((x, c))
    qty = data.draw(st.integers(1, 20 * 10**18))
    assert water_fill(rust, side, qty, curve, 6) == water_fill(twinned, side, qty, curve, 6)


# ----------------------------------------------------------------------------- the choice


def value(planner: SplitPlanner, plan: PlanCreated | PlanRejected) -> Fraction | None:
    return None if isinstance(plan, PlanRejected) else planner.value(plan.plan, 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    kind=st.sampled_from(["ACQUIRE", "DISPOSE"]),
    depth=st.integers(5, 200),
    offset=st.integers(-15, 15),
    fee=st.sampled_from([100, 500, 3000]),
    amount=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(8), places=3),
)
def test_the_plan_taken_is_never_worse_than_the_best_single_venue(
    data: st.DataObject, kind: str, depth: int, offset: int, fee: int, amount: Decimal
) -> None:
    book = data.draw(random_book(ops), label="book")
    pools = {"sim": [pool(str(depth), str(depth * (3000 + offset)), fee)]}
    graphs = VenueGraphs().sync(pools)
    wanted = intent(kind, str(amount))
    chosen = plan_intent(wanted, 5, pools, TOPOLOGY, graphs, book=book)
    pools_only = plan_intent(wanted, 5, pools, TOPOLOGY, graphs)
    books_only = plan_on_books(wanted, 5, book)
    planner = SplitPlanner(wanted, book, graphs, TOPOLOGY, {"sim": Routing()})
    singles = [v for v in (value(planner, pools_only), value(planner, books_only)) if v is not None]
    if singles:
        assert isinstance(chosen, PlanCreated), chosen
    if isinstance(chosen, PlanCreated):
        got = planner.value(chosen.plan, 0)
        assert all(got >= v for v in singles)
        steps = chosen.plan.steps
        qty = wanted.subject.amount
        traded = sum(s.amount_out if kind == "ACQUIRE" else s.amount_in for s in steps)
        assert traded == qty
        assert len({s.step_id for s in steps}) == len(steps)


def test_a_split_is_planned_when_it_beats_both_single_venues() -> None:
    book = book_of(ops, A, B)
    pools = {"sim": [pool("5000", "15000000")]}
    wanted = intent("ACQUIRE", "4")
    chosen = plan_intent(wanted, 5, pools, TOPOLOGY, book=book)
    assert isinstance(chosen, PlanCreated), chosen
    plan = chosen.plan
    kinds = {s.venue: s.kind for s in plan.steps}
    assert kinds["sim"] is StepKind.SWAP
    assert {v for v, k in kinds.items() if k is StepKind.ORDER} >= {"clob_a"}
    assert [s.step_id for s in plan.steps] == [f"{plan.id}-{k + 1}" for k in range(len(plan.steps))]
    assert all(s.mode is SwapMode.EXACT_OUT for s in plan.steps)
    assert sum(s.amount_out for s in plan.steps) == Decimal(4) == plan.estimated_out
    planner = SplitPlanner(wanted, book, VenueGraphs().sync(pools), TOPOLOGY, {})
    pools_only = plan_intent(wanted, 5, pools, TOPOLOGY)
    books_only = plan_on_books(wanted, 5, book)
    assert isinstance(pools_only, PlanCreated)
    assert isinstance(books_only, PlanCreated)
    got = planner.value(plan, 0)
    assert got > planner.value(pools_only.plan, 0)
    assert got > planner.value(books_only.plan, 0)
    # Each book child's IOC limit is the worst of the venue's prices it takes.
    for step in plan.steps:
        if step.kind is StepKind.ORDER:
            assert step.limit_price is not None
            assert step.max_in >= step.amount_in


def test_gas_keeps_a_small_saving_on_the_pools_alone() -> None:
    """With gas charged per pool route, a split whose saving is below it is not taken."""
    book = book_of(ops, A, B)
    pools = {"sim": [pool("5000", "15000000")]}
    wanted = intent("ACQUIRE", "4")
    free = plan_intent(wanted, 5, pools, TOPOLOGY, book=book)
    assert isinstance(free, PlanCreated)
    assert {s.kind for s in free.plan.steps} == {StepKind.SWAP, StepKind.ORDER}
    # A huge gas price makes every pool route dearer than the books alone.
    expensive = TOPOLOGY.model_copy(
        update={
            "risk": TOPOLOGY.risk.model_copy(
                update={
                    "reference_prices": {**TOPOLOGY.risk.reference_prices, "WETH": Decimal("1e15")}
                }
            )
        }
    )
    taxed = plan_intent(
        wanted, 5, pools, expensive, routing={"sim": Routing(pays_gas=True)}, book=book
    )
    assert isinstance(taxed, PlanCreated), taxed
    assert {s.kind for s in taxed.plan.steps} == {StepKind.ORDER}


@pytest.mark.parametrize("kind", ["ACQUIRE", "DISPOSE"])
def test_the_plan_is_the_same_on_the_rust_books_and_on_the_twin(kind: str) -> None:
    pools = {"sim": [pool("5000", "15000000")]}
    wanted = intent(kind, "4")
    on_rust = plan_intent(wanted, 5, pools, TOPOLOGY, book=book_of(ops, A, B))
    on_twin = plan_intent(wanted, 5, pools, TOPOLOGY, book=book_of(twin.books, A, B))
    assert isinstance(on_rust, PlanCreated)
    assert on_rust == on_twin


def test_an_intent_allowed_no_book_venue_is_planned_on_the_pools_alone() -> None:
    pools = {"sim": [pool("5000", "15000000")]}
    data = submission(TOPOLOGY, "ACQUIRE", "WETH", "USDC", "4", max_slippage="0.05")
    data["constraints"]["allowedVenues"] = ["sim"]
    wanted = Intent.model_validate(
        {**data, "id": "intent-01HF7YAT00YKXV1TE2NN8PMX9W", "createdAtMs": T0}
    )
    with_books = plan_intent(wanted, 5, pools, TOPOLOGY, book=book_of(ops, A, B))
    assert with_books == plan_intent(wanted, 5, pools, TOPOLOGY)
