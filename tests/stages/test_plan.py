"""Plan: route each intent over the venues' pools; min_out / max_in from max_slippage.

Expected amounts are computed here twice over, independently of the stage: by the
constant-product formula written out below, and by the pure-Python twin of the router.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline import ops
from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.market.board import AggregatedBook, BookBoard
from pipeline.models.events import Event, IntentPrioritised, PlanCreated, PlanRejected, make_event
from pipeline.models.intent import Intent
from pipeline.models.market import BookLevel, BookSnapshot, PoolState
from pipeline.models.plan import ExecutionPlan, StepKind, SwapMode
from pipeline.ops import twin
from pipeline.plugins.manager import build_venues
from pipeline.runtime.delivery.tables import ChangelogTable
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.execute import build as build_execute
from pipeline.stages.ingest import ingest_record
from pipeline.stages.plan import PlanStage, build, plan_intent, plan_output
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from pipeline.topology import load_topology
from plugins.sim_venue import SimVenue
from plugins.sim_venue.amm import Hop, swap_exact_in, swap_exact_out
from plugins.sim_venue.amm import Pool as SimPool
from plugins.sim_venue.units import to_units

TOPOLOGY = load_topology()
INGESTED = TOPOLOGY.stage("ingest").events_topic
OUTPUT_TOPIC = TOPOLOGY.stage("plan").events_topic
T0 = 1_700_000_000_000
PPM = 1_000_000


def units(symbol: str, human: str | Decimal) -> int:
    """Exact human -> base units (integers only)."""
    decimals = TOPOLOGY.asset(symbol).decimals
    value = Decimal(human)
    scaled = value * (Decimal(10) ** decimals)
    assert scaled == scaled.to_integral_value()
    return int(scaled)


def human(symbol: str, base: int) -> Decimal:
    return Decimal(base) / (Decimal(10) ** TOPOLOGY.asset(symbol).decimals)


def pools_from_topology(venue: str = "sim") -> list[PoolState]:
    config = TOPOLOGY.plugins.venues["sim"].config
    return [
        PoolState(
            pool_id=p["pool_id"],
            venue=venue,
            chain_id=1,
            token0=p["token0"],
            token1=p["token1"],
            reserve0=units(p["token0"], p["reserve0"]),
            reserve1=units(p["token1"], p["reserve1"]),
            fee=p["fee"],
        )
        for p in config["pools"]
    ]


POOLS = {"sim": pools_from_topology()}


def intent(
    kind: str,
    subject: str,
    counter: str,
    amount: str,
    *,
    slippage: str = "0.01",
    allowed: list[str] | None = None,
) -> Intent:
    data = submission(TOPOLOGY, kind, subject, counter, amount, max_slippage=slippage)
    if allowed is not None:
        data["constraints"]["allowedVenues"] = allowed
    return Intent.model_validate(
        {**data, "id": "intent-01HF7YAT00YKXV1TE2NN8PMX9W", "createdAtMs": T0}
    )


# --- the independent computation --------------------------------------------------------


def cp_out(r_in: int, r_out: int, x: int, fee: int) -> int:
    g = PPM - fee
    return x * g * r_out // (r_in * PPM + x * g)


def cp_in(r_in: int, r_out: int, y: int, fee: int) -> int:
    """Least x with cp_out(r_in, r_out, x, fee) >= y."""
    g = PPM - fee
    return -(-(y * r_in * PPM) // ((r_out - y) * g))


def reserves(pool: PoolState, token_in: str) -> tuple[int, int]:
    return (
        (pool.reserve0, pool.reserve1)
        if token_in == pool.token0
        else (pool.reserve1, pool.reserve0)
    )


Hops = list[tuple[PoolState, str, str]]  # (pool, token in, token out) per hop


def paths(pools: list[PoolState], start: str, goal: str, hops: int = 3) -> list[Hops]:
    """Every simple path (no token twice) of at most ``hops`` pools."""
    found: list[Hops] = []

    def walk(token: str, seen: set[str], path: Hops) -> None:
        if token == goal and path:
            found.append(list(path))
            return
        if len(path) == hops:
            return
        for pool in pools:
            if token not in (pool.token0, pool.token1):
                continue
            nxt = pool.token1 if token == pool.token0 else pool.token0
            if nxt in seen:
                continue
            path.append((pool, token, nxt))
            walk(nxt, seen | {nxt}, path)
            path.pop()

    walk(start, {start}, [])
    return found


def best_exact_in(pools: list[PoolState], token_in: str, token_out: str, x: int) -> int:
    outs = []
    for path in paths(pools, token_in, token_out):
        amount = x
        for pool, t_in, _ in path:
            amount = cp_out(*reserves(pool, t_in), amount, pool.fee)
        outs.append(amount)
    return max(outs)


def best_exact_out(pools: list[PoolState], token_in: str, token_out: str, y: int) -> int:
    ins = []
    for path in paths(pools, token_in, token_out):
        amount = y
        ok = True
        for pool, t_in, _ in reversed(path):
            r_in, r_out = reserves(pool, t_in)
            if amount >= r_out:
                ok = False
                break
            amount = cp_in(r_in, r_out, amount, pool.fee)
        if ok:
            ins.append(amount)
    return min(ins)


def twin_graph(pools: list[PoolState]) -> twin.RouteGraph:
    graph = twin.RouteGraph(pools[0].chain_id)
    for p in pools:
        graph.update_cp_pool(p.pool_id, p.venue, p.token0, p.token1, p.reserve0, p.reserve1, p.fee)
    return graph


def created(result: PlanCreated | PlanRejected) -> PlanCreated:
    assert isinstance(result, PlanCreated), result
    return result


# ----------------------------------------------------------------------------- DISPOSE


@pytest.mark.parametrize(
    ("subject", "counter", "amount", "slippage"),
    [
        ("WETH", "USDC", "1", "0.01"),
        ("WETH", "USDC", "0.37", "0.003"),
        ("USDC", "WETH", "2500", "0.02"),
        ("WBTC", "USDC", "0.05", "0.01"),
        ("DAI", "WETH", "1000", "0.02"),  # two hops: DAI -> USDC -> WETH
    ],
)
def test_dispose_is_exact_in_with_a_slippage_floor(
    subject: str, counter: str, amount: str, slippage: str
) -> None:
    plan = created(
        plan_intent(
            intent("DISPOSE", subject, counter, amount, slippage=slippage), 7, POOLS, TOPOLOGY
        )
    ).plan
    (step,) = plan.steps
    spend = units(subject, amount)
    quote = best_exact_in(POOLS["sim"], subject, counter, spend)
    route = twin_graph(POOLS["sim"]).best_route(subject, counter, spend)
    assert route is not None
    assert route.amount_out == quote

    assert step.mode is SwapMode.EXACT_IN
    assert (step.asset_in, step.asset_out, step.venue) == (subject, counter, "sim")
    assert step.amount_in == Decimal(amount) == step.max_in
    assert step.amount_out == human(counter, quote) == plan.estimated_out
    floor = math.floor(Decimal(quote) * (1 - Decimal(slippage)))
    assert step.min_out == human(counter, floor)
    assert step.min_out <= step.amount_out
    # The legs are the twin's route, hop for hop, amounts in base units.
    assert [
        (leg.pool_id, leg.token_in, leg.token_out, leg.amount_in, leg.amount_out)
        for leg in step.legs
    ] == [
        (leg.pool_id, leg.token_in, leg.token_out, leg.amount_in, leg.amount_out)
        for leg in route.paths[0].legs
    ]
    assert step.legs[0].amount_in == spend
    assert plan.price_impact == Decimal(route.price_impact_ppm) / PPM


def test_dispose_weth_takes_the_deep_cheap_pool() -> None:
    plan = created(plan_intent(intent("DISPOSE", "WETH", "USDC", "1"), 5, POOLS, TOPOLOGY)).plan
    (step,) = plan.steps
    assert [leg.pool_id for leg in step.legs] == ["sim-weth-usdc-5"]
    # 1 WETH into 20,000 WETH / 60,000,000 USDC at 0.05 %: written out by hand.
    out = 10**18 * 999_500 * 60_000_000 * 10**6 // (20_000 * 10**18 * PPM + 10**18 * 999_500)
    assert step.amount_out == human("USDC", out)
    assert step.min_out == human("USDC", out * 99 // 100)
    assert plan.estimated_cost == Decimal("0.0005")  # the 0.05 % fee, in WETH


# ----------------------------------------------------------------------------- ACQUIRE


@pytest.mark.parametrize(
    ("subject", "counter", "amount", "slippage"),
    [
        ("WETH", "USDC", "1", "0.01"),
        ("WETH", "USDC", "0.123456789012345678", "0.005"),
        ("USDC", "DAI", "4999.99", "0.01"),
        ("WETH", "DAI", "0.5", "0.02"),  # two hops
    ],
)
def test_acquire_is_exact_out_with_a_slippage_ceiling(
    subject: str, counter: str, amount: str, slippage: str
) -> None:
    plan = created(
        plan_intent(
            intent("ACQUIRE", subject, counter, amount, slippage=slippage), 3, POOLS, TOPOLOGY
        )
    ).plan
    (step,) = plan.steps
    want = units(subject, amount)
    cost = best_exact_out(POOLS["sim"], counter, subject, want)
    route = twin_graph(POOLS["sim"]).best_route_exact_out(counter, subject, want)
    assert route is not None
    assert route.amount_in == cost

    assert step.mode is SwapMode.EXACT_OUT
    assert (step.asset_in, step.asset_out) == (counter, subject)
    assert step.amount_out == Decimal(amount) == step.min_out == plan.estimated_out
    assert step.amount_in == human(counter, cost)
    ceiling = math.ceil(Decimal(cost) * (1 + Decimal(slippage)))
    assert step.max_in == human(counter, ceiling)
    assert step.max_in >= step.amount_in
    assert step.legs[-1].amount_out == want


# ----------------------------------------------------------------------------- refusals


def test_no_route_for_an_asset_without_pools() -> None:
    result = plan_intent(intent("DISPOSE", "ARB", "USDC", "10"), 5, POOLS, TOPOLOGY)
    assert isinstance(result, PlanRejected)
    assert result.reason == "no_route"
    assert "ARB" in result.detail
    assert "USDC" in result.detail


def test_no_route_without_venues() -> None:
    result = plan_intent(intent("ACQUIRE", "WETH", "USDC", "1"), 5, {}, TOPOLOGY)
    assert isinstance(result, PlanRejected)
    assert result.reason == "no_route"
    # ACQUIRE routes from what is paid to what is bought.
    assert "from USDC to WETH" in result.detail


def test_no_route_when_the_pool_cannot_deliver() -> None:
    # More WETH than the pools hold: no exact-out path exists.
    result = plan_intent(intent("ACQUIRE", "WETH", "USDC", "30000"), 5, POOLS, TOPOLOGY)
    assert isinstance(result, PlanRejected)
    assert result.reason == "no_route"


def test_empty_pools_are_ignored() -> None:
    drained = {
        "sim": [
            p.model_copy(update={"reserve1": 0}) if p.pool_id.startswith("sim-weth-usdc") else p
            for p in POOLS["sim"]
        ]
    }
    plan = created(plan_intent(intent("DISPOSE", "WETH", "USDC", "1"), 5, drained, TOPOLOGY)).plan
    assert [leg.pool_id for leg in plan.steps[0].legs] == ["sim-wbtc-weth-30", "sim-wbtc-usdc-30"]


def test_huge_trade_is_refused_for_price_impact() -> None:
    # 300 WETH (900,000 USDC: within the risk limit) moves the deepest pool by ~1.5 %,
    # three times the 0.5 % the intent tolerates.
    result = plan_intent(
        intent("DISPOSE", "WETH", "USDC", "300", slippage="0.005"), 5, POOLS, TOPOLOGY
    )
    assert isinstance(result, PlanRejected)
    assert result.reason == "price_impact"
    route = twin_graph(POOLS["sim"]).best_route("WETH", "USDC", units("WETH", "300"))
    assert route is not None
    assert route.price_impact_ppm > 5_000
    assert "0.005" in result.detail


def test_impact_just_within_slippage_is_planned_with_a_proportional_risk_score() -> None:
    route = twin_graph(POOLS["sim"]).best_route("WETH", "USDC", units("WETH", "10"))
    assert route is not None
    impact = Decimal(route.price_impact_ppm) / PPM
    plan = created(
        plan_intent(
            intent("DISPOSE", "WETH", "USDC", "10", slippage=str(impact)), 5, POOLS, TOPOLOGY
        )
    ).plan
    assert plan.risk_score == 100
    plan = created(
        plan_intent(
            intent("DISPOSE", "WETH", "USDC", "10", slippage=str(impact * 4)), 5, POOLS, TOPOLOGY
        )
    ).plan
    assert plan.risk_score == 25
    refused = plan_intent(
        intent("DISPOSE", "WETH", "USDC", "10", slippage=str(impact - Decimal("0.000001"))),
        5,
        POOLS,
        TOPOLOGY,
    )
    assert isinstance(refused, PlanRejected)
    assert refused.reason == "price_impact"


# ----------------------------------------------------------------------------- venues


def two_venues() -> dict[str, list[PoolState]]:
    """``deep`` has 10x the liquidity of ``shallow``; same price, same fee."""

    def pool(venue: str, scale: int) -> PoolState:
        return PoolState(
            pool_id=f"{venue}-weth-usdc",
            venue=venue,
            chain_id=1,
            token0="WETH",
            token1="USDC",
            reserve0=units("WETH", "1000") * scale,
            reserve1=units("USDC", "3000000") * scale,
            fee=3000,
        )

    return {"shallow": [pool("shallow", 1)], "deep": [pool("deep", 10)]}


def test_best_venue_wins() -> None:
    plan = created(
        plan_intent(intent("DISPOSE", "WETH", "USDC", "5"), 5, two_venues(), TOPOLOGY)
    ).plan
    assert plan.steps[0].venue == "deep"
    assert {leg.venue for leg in plan.steps[0].legs} == {"deep"}


def test_allowed_venues_are_respected() -> None:
    plan = created(
        plan_intent(
            intent("DISPOSE", "WETH", "USDC", "5", allowed=["shallow"]), 5, two_venues(), TOPOLOGY
        )
    ).plan
    assert plan.steps[0].venue == "shallow"
    assert [leg.pool_id for leg in plan.steps[0].legs] == ["shallow-weth-usdc"]
    assert plan.steps[0].amount_out == human(
        "USDC", cp_out(units("WETH", "1000"), units("USDC", "3000000"), units("WETH", "5"), 3000)
    )


def test_allowed_venue_without_a_route_is_no_route() -> None:
    result = plan_intent(
        intent("DISPOSE", "WETH", "USDC", "5", allowed=["elsewhere"]), 5, two_venues(), TOPOLOGY
    )
    assert isinstance(result, PlanRejected)
    assert result.reason == "no_route"


# ----------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    ("kind", "subject", "counter", "amount"),
    [
        ("DISPOSE", "USDC", "WETH", "0.0000001"),  # below one base unit of USDC: 0 units
        ("ACQUIRE", "USDC", "DAI", "0.0000004"),
        ("DISPOSE", "DAI", "USDC", "1e30"),  # beyond 2**128 base units
    ],
)
def test_unroutable_amounts_are_refused_not_raised(
    kind: str, subject: str, counter: str, amount: str
) -> None:
    # validate only checks amount > 0; the router refuses 0 base units (and > 2**128) with
    # RouteQueryError.  "Bad input never crashes a stage": the plan stage must answer with
    # plan.rejected, or one such intent stops the whole partition.
    result = plan_intent(intent(kind, subject, counter, amount), 5, POOLS, TOPOLOGY)
    assert isinstance(result, PlanRejected)
    assert result.reason == "unroutable_amount"
    assert "base units" in result.detail


def test_a_pool_the_router_cannot_take_is_left_out() -> None:
    # A venue reporting reserves beyond 2**128 must not stop every plan on every venue.
    bad = POOLS["sim"][0].model_copy(update={"pool_id": "huge", "reserve0": 2**130})
    result = plan_intent(
        intent("DISPOSE", "WETH", "USDC", "1"), 5, {"sim": [bad, *POOLS["sim"]]}, TOPOLOGY
    )
    plan = created(result).plan
    assert all(leg.pool_id != "huge" for leg in plan.steps[0].legs)
    assert result == plan_intent(intent("DISPOSE", "WETH", "USDC", "1"), 5, POOLS, TOPOLOGY)


def test_plan_is_deterministic() -> None:
    a = plan_intent(intent("DISPOSE", "WETH", "USDC", "1"), 5, POOLS, TOPOLOGY)
    b = plan_intent(intent("DISPOSE", "WETH", "USDC", "1"), 5, POOLS, TOPOLOGY)
    assert a == b
    plan = created(a).plan
    assert plan.id.startswith("plan-")
    assert plan.steps[0].step_id == f"{plan.id}-1"
    assert plan.intent_id == "intent-01HF7YAT00YKXV1TE2NN8PMX9W"
    assert created(a).priority == 5


# ----------------------------------------------------------------------------- events


def prioritised_event(data: dict[str, Any], offset: int = 0) -> Event:
    rec = Record("sep.intents.submitted", 0, offset, T0, b"s", orjson.dumps(data))
    sub = decode_event(ingest_record(rec, MemoryTable(), T0, topic=INGESTED).outputs[0].value)
    _, accepted = (decode_event(o.value) for o in validate_event(sub, TOPOLOGY, ("sim",), T0))
    return decode_event(prioritise_event(accepted, TOPOLOGY, T0)[1].value)


def test_plan_output_follows_the_prioritised_event() -> None:
    source = prioritised_event(submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1"))
    output = plan_output(source, POOLS, TOPOLOGY, T0 + 7)
    event = decode_event(output.value)
    assert (output.topic, output.key) == (OUTPUT_TOPIC, source.correlation_id.encode())
    assert (event.topic, event.seq) == ("plan.created", 5)
    assert event.causation_id == source.event_id
    payload = event.parse_payload()
    assert isinstance(payload, PlanCreated)
    assert payload.priority == source.payload["priority"]
    assert payload.intent.id == source.correlation_id == payload.plan.intent_id
    # Decimals stay exact strings on the wire.
    step = event.payload["plan"]["steps"][0]
    assert isinstance(step["minOut"], str)
    assert isinstance(step["amountIn"], str)
    # Reprocessing re-emits the same event id.
    assert decode_event(plan_output(source, POOLS, TOPOLOGY, T0 + 999).value).event_id == (
        event.event_id
    )


def test_plan_rejected_event() -> None:
    source = prioritised_event(
        submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "300", max_slippage="0.005")
    )
    event = decode_event(plan_output(source, POOLS, TOPOLOGY, T0).value)
    assert (event.topic, event.seq, event.causation_id) == ("plan.rejected", 5, source.event_id)
    assert event.payload["reason"] == "price_impact"


async def test_stage_plans_against_the_venues_pools(tmp_path: Path) -> None:
    # The sim venue alone: this is about the stage, not about reaching a chain.
    venues = {"sim": build_venues(TOPOLOGY, tmp_path)["sim"]}
    for venue in venues.values():
        await venue.start()
    try:
        stage = build(StageContext(TOPOLOGY, Settings(), venues=venues, clock=lambda: T0))
        sources = [
            prioritised_event(
                submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", client_intent_id=f"c{i}"),
                offset=i,
            )
            for i in range(2)
        ]
        sent: list[Output] = []

        async def emit(output: Output) -> None:
            sent.append(output)

        await stage.process(
            [
                Record("sep.intents.prioritised", 0, i, T0, None, encode_event(e))
                for i, e in enumerate(sources)
            ],
            emit,
        )
        plans = [decode_event(o.value) for o in sent]
        assert [e.topic for e in plans] == ["plan.created", "plan.created"]
        # The venue's pools are the configured ones, so the plan equals one made from them.
        expected = plan_output(sources[0], POOLS, TOPOLOGY, T0)
        assert sent[0].value == expected.value
    finally:
        for venue in venues.values():
            await venue.stop()


class PublishedPools:
    """Pool states as the market feed would hold them (the feed itself: tests/market)."""

    def __init__(self, pools: dict[str, list[PoolState]]) -> None:
        self._pools = pools

    def pools(self) -> dict[str, list[PoolState]]:
        return self._pools


async def test_published_pool_states_are_planned_on_instead_of_asking_the_venue(
    tmp_path: Path,
) -> None:
    sim = build_venues(TOPOLOGY, tmp_path)["sim"]
    await sim.start()
    try:
        # What the market topic says differs from the venue's configured pools: it wins.
        moved = [p.model_copy(update={"reserve1": p.reserve1 * 9 // 10}) for p in POOLS["sim"]]
        published = PublishedPools({"sim": moved})
        context = StageContext(
            TOPOLOGY,
            Settings(),
            venues={"sim": sim},
            clock=lambda: T0,
            market=published,
            market_venues=frozenset({"sim"}),
        )
        source = prioritised_event(
            submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", client_intent_id="m1")
        )
        sent: list[Output] = []

        async def emit(output: Output) -> None:
            sent.append(output)

        record = Record("sep.intents.prioritised", 0, 0, T0, None, encode_event(source))
        await build(context).process([record], emit)
        assert sent[0].value == plan_output(source, {"sim": moved}, TOPOLOGY, T0).value
        assert sent[0].value != plan_output(source, POOLS, TOPOLOGY, T0).value

        # Until the feed has a venue's pools, the venue itself is asked.
        context.market = PublishedPools({})
        sent.clear()
        await build(context).process([record], emit)
        assert sent[0].value == plan_output(source, POOLS, TOPOLOGY, T0).value
    finally:
        await sim.stop()


async def test_a_redelivered_intent_gets_the_plan_it_was_given_though_the_pools_moved(
    tmp_path: Path,
) -> None:
    sim = build_venues(TOPOLOGY, tmp_path)["sim"]
    await sim.start()
    try:
        published = PublishedPools(POOLS)
        context = StageContext(
            TOPOLOGY,
            Settings(),
            venues={"sim": sim},
            clock=lambda: T0,
            market=published,
            market_venues=frozenset({"sim"}),
        )
        stage = build(context)
        first, second = (
            prioritised_event(
                submission(TOPOLOGY, "DISPOSE", "WETH", "USDC", "1", client_intent_id=c), offset=i
            )
            for i, c in enumerate(("r1", "r2"))
        )
        sent: list[Output] = []

        async def emit(output: Output) -> None:
            sent.append(output)

        def record(event: Event, offset: int) -> Record:
            return Record("sep.intents.prioritised", 0, offset, T0, None, encode_event(event))

        await stage.process([record(first, 0)], emit)
        original = sent[0].value
        assert original == plan_output(first, POOLS, TOPOLOGY, T0).value

        # The pools move; the record comes again (a rebalance before its offset was
        # committed), twice in one batch, next to an intent the stage has not seen.
        moved = {"sim": [p.model_copy(update={"reserve1": p.reserve1 // 2}) for p in POOLS["sim"]]}
        published._pools = moved
        assert plan_output(first, moved, TOPOLOGY, T0).value != original
        sent.clear()
        await stage.process([record(first, 0), record(second, 1), record(first, 0)], emit)
        assert [o.value for o in sent] == [
            original,
            plan_output(second, moved, TOPOLOGY, T0).value,
            original,
        ]
    finally:
        await sim.stop()


# ----------------------------------------------------------------------------- pending flow

# Big trades, most selling WETH: each moves the pools by 0.2-0.4 %, so a plan that assumed it
# traded alone would fail its 1 % slippage bound behind the others (3 of them do, below).
FLOW = [
    ("DISPOSE", "WETH", "USDC", "60"),
    ("ACQUIRE", "WETH", "USDC", "15"),
    ("DISPOSE", "DAI", "WETH", "60000"),
    ("DISPOSE", "WETH", "USDC", "80"),
    ("ACQUIRE", "USDC", "WETH", "40000"),
    ("DISPOSE", "USDC", "WETH", "50000"),
] * 2


def sim_amm_pools() -> dict[str, SimPool]:
    return {
        p.pool_id: SimPool(p.pool_id, p.token0, p.token1, p.reserve0, p.reserve1, p.fee)
        for p in POOLS["sim"]
    }


def execute_in_order(
    plans: list[ExecutionPlan], pools: dict[str, SimPool], *, as_quoted: bool = False
) -> list[str]:
    """Each plan's steps run in turn with the sim venue's math and limits (as ``SimVenue``
    rounds them); the ids of the plans whose step failed on slippage.  ``as_quoted``: check
    that every fill is exactly what its step was quoted."""
    failed: list[str] = []
    for plan in plans:
        for step in plan.steps:
            hops = [Hop(leg.pool_id, leg.token_in, leg.token_out) for leg in step.legs]
            asset_in, asset_out = TOPOLOGY.asset(step.asset_in), TOPOLOGY.asset(step.asset_out)
            if step.mode is SwapMode.EXACT_IN:
                swap = swap_exact_in(pools, hops, to_units(step.amount_in, asset_in.decimals))
                ok = swap.amount_out >= to_units(step.min_out, asset_out.decimals, round_up=True)
                exact = swap.amount_out == to_units(step.amount_out, asset_out.decimals)
            else:
                swap = swap_exact_out(
                    pools, hops, to_units(step.amount_out, asset_out.decimals, round_up=True)
                )
                ok = swap.amount_in <= to_units(step.max_in, asset_in.decimals)
                exact = swap.amount_in == to_units(step.amount_in, asset_in.decimals)
            if not ok:
                failed.append(plan.id)
                continue
            assert exact or not as_quoted, (plan.id, step.step_id)
            pools.update(swap.pools)
    return failed


def flow_events() -> list[Event]:
    return [
        prioritised_event(
            submission(TOPOLOGY, kind, subject, counter, amount, client_intent_id=f"flow-{i}"),
            offset=i,
        )
        for i, (kind, subject, counter, amount) in enumerate(FLOW)
    ]


def plans_of(outputs: list[Output]) -> list[ExecutionPlan]:
    created = [decode_event(o.value).parse_payload() for o in outputs]
    assert all(isinstance(c, PlanCreated) for c in created), created
    return [c.plan for c in created if isinstance(c, PlanCreated)]


async def test_each_plan_accounts_for_the_plans_before_it_so_none_fails_its_slippage(
    tmp_path: Path,
) -> None:
    events = flow_events()
    # Priced alone on the published pools, half of them fail behind the others.
    alone = [created(plan_output_result(e)).plan for e in events]
    assert len(execute_in_order(alone, sim_amm_pools())) >= 3

    sim = build_venues(TOPOLOGY, tmp_path)["sim"]
    await sim.start()
    try:
        context = StageContext(
            TOPOLOGY,
            Settings(plan_threads=2),
            venues={"sim": sim},
            clock=lambda: T0,
            market=PublishedPools(POOLS),
            market_venues=frozenset({"sim"}),
        )
        stage = build(context)
        sent: list[Output] = []

        async def emit(output: Output) -> None:
            sent.append(output)

        # Two batches: within one, and from one to the next, the plans stack in order.
        records = [
            Record("sep.intents.prioritised", 0, i, T0, None, encode_event(e))
            for i, e in enumerate(events)
        ]
        await stage.process(records[:7], emit)
        await stage.process(records[7:], emit)
        plans = plans_of(sent)
        assert [p.intent_id for p in plans] == [e.correlation_id for e in events]
        # Nobody else trades: each fill is exactly what it was quoted on the pending view.
        assert execute_in_order(plans, sim_amm_pools(), as_quoted=True) == []
        assert len(stage.pending) == len(FLOW)
        # The first was priced on the pools alone; the later ones not.
        assert plans[0] == alone[0]
        assert plans[3].estimated_out < alone[3].estimated_out  # WETH sold before it
    finally:
        await sim.stop()


def plan_output_result(event: Event) -> PlanCreated | PlanRejected:
    payload = decode_event(plan_output(event, POOLS, TOPOLOGY, T0).value).parse_payload()
    assert isinstance(payload, PlanCreated | PlanRejected)
    return payload


async def test_the_stage_releases_its_flow_as_the_executions_land_or_fail(
    tmp_path: Path,
) -> None:
    """Plan, execute on the sim venue, and feed the reports back as ``sep.executions`` does:
    filled plans leave the view once the venue's pools include them; a rival's trade between
    plan and execution still fails the step, and the failure releases it."""
    sim = build_venues(TOPOLOGY, tmp_path)["sim"]
    assert isinstance(sim, SimVenue)
    await sim.start()
    try:
        # No market feed: the venue is read each batch, its pools carrying their fill seq.
        context = StageContext(TOPOLOGY, Settings(), venues={"sim": sim}, clock=lambda: T0)
        planner, executor = build(context), build_execute(context)
        plans: list[Output] = []
        reports: list[Output] = []

        async def to_plans(output: Output) -> None:
            plans.append(output)

        async def to_reports(output: Output) -> None:
            reports.append(output)

        def records(outputs: list[Output], topic: str) -> list[Record]:
            return [Record(topic, 0, i, T0, o.key, o.value) for i, o in enumerate(outputs)]

        events = flow_events()
        await planner.process(
            [
                Record("sep.intents.prioritised", 0, i, T0, None, encode_event(e))
                for i, e in enumerate(events[:6])
            ],
            to_plans,
        )
        assert len(planner.pending) == 6
        await executor.process(records(plans, "sep.plans"), to_reports)
        topics = [decode_event(o.value).topic for o in reports]
        assert topics.count("exec.completed") == 6
        assert "exec.step_failed" not in topics

        # The reports come back; the next batch reads the pools with the fills in them.
        last = events[6]
        plans.clear()
        await planner.process(
            [
                *records(reports, "sep.executions"),
                Record("sep.intents.prioritised", 0, 6, T0, None, encode_event(last)),
            ],
            to_plans,
        )
        assert len(planner.pending) == 1  # only the plan just made
        now = {p.pool_id: p for p in await sim.pools()}
        assert plans[0].value == plan_output(last, {"sim": list(now.values())}, TOPOLOGY, T0).value

        # A rival sells 400 WETH into the pool between plan and execution: the step fails.
        step = plans_of(plans)[0].steps[0]
        rival = step.model_copy(
            update={
                "step_id": "rival-1",
                "amount_in": Decimal(400),
                "min_out": Decimal(0),
                "amount_out": Decimal(0),
                "max_in": Decimal(400),
                "mode": SwapMode.EXACT_IN,
                "asset_in": "WETH",
                "asset_out": "USDC",
                "legs": (
                    step.legs[0].model_copy(update={"token_in": "WETH", "token_out": "USDC"}),
                ),
            }
        )
        await sim.wait_receipt(await sim.submit(rival), timeout_s=5)
        reports.clear()
        await executor.process(records(plans, "sep.plans"), to_reports)
        failed = [decode_event(o.value) for o in reports]
        assert [e.topic for e in failed][-2:] == ["exec.step_failed", "exec.failed"]
        assert "slippage" in failed[-2].payload["reason"]
        await planner.process(records(reports, "sep.executions"), to_plans)
        assert len(planner.pending) == 0
    finally:
        await sim.stop()


def test_the_planner_reads_the_executions_of_its_own_intents() -> None:
    """``sep.executions`` is an input of plan, keyed and partitioned like the intents it
    plans, so an intent's reports reach the worker holding its pending plan."""
    stage = next(s for s in TOPOLOGY.stages if s.name == "plan")
    assert {"sep.intents.prioritised", "sep.executions"} <= set(stage.inputs)
    topics = {t.name: t for t in TOPOLOGY.topics}
    executions, intents = topics["sep.executions"], topics["sep.intents.prioritised"]
    assert (executions.key, executions.partitions) == (intents.key, intents.partitions)


async def test_a_restarted_planner_counts_the_plans_it_recovered_as_in_flight(
    tmp_path: Path,
) -> None:
    """After a restart, plans made by the earlier process (recovered from the changelog) may
    still be executing: the new planner prices the next intents as the old one would have."""
    records = [
        Record("sep.intents.prioritised", 0, i, T0, None, encode_event(e))
        for i, e in enumerate(flow_events())
    ]
    sim = build_venues(TOPOLOGY, tmp_path)["sim"]
    await sim.start()
    try:

        def stage_with(table: ChangelogTable) -> PlanStage:
            context = StageContext(
                TOPOLOGY,
                Settings(),
                venues={"sim": sim},
                clock=lambda: T0,
                market=PublishedPools(POOLS),
                market_venues=frozenset({"sim"}),
                table=lambda name, help: table,
            )
            return build(context)

        async def plans(stage: PlanStage, batch: list[Record]) -> list[ExecutionPlan]:
            sent: list[Output] = []

            async def emit(output: Output) -> None:
                sent.append(output)

            await stage.process(batch, emit)
            return plans_of(sent)

        before = ChangelogTable("decisions", "changelog", "")
        expected = await plans(stage_with(before), records)  # one process throughout
        first = ChangelogTable("decisions", "changelog", "")
        await plans(stage_with(first), records[:7])
        restarted = ChangelogTable("decisions", "changelog", "")
        for write in first.take_pending():  # what the restarted process reads back
            restarted.apply(write.partition, write.key, write.value)
        fresh = await plans(stage_with(ChangelogTable("decisions", "changelog", "")), records[7:])
        assert await plans(stage_with(restarted), records[7:]) == expected[7:]
        assert fresh != expected[7:]  # without the recovered plans, priced as if alone
    finally:
        await sim.stop()


class BoardView:
    """The book feed's view (``StageContext.books``) over a board fed by hand."""

    def __init__(self, board: BookBoard) -> None:
        self._board = board

    def book(self, base: str, quote: str) -> AggregatedBook | None:
        return self._board.book(base, quote)


def book_snapshot(venue: str, asks: dict[str, str], fee: int, lot: str) -> BookSnapshot:
    return BookSnapshot(
        venue=venue,
        market_id="WETH-USDC",
        chain_id=31337,
        base="WETH",
        quote="USDC",
        tick_size=Decimal("0.01"),
        lot_size=Decimal(lot),
        maker_fee=0,
        taker_fee=fee,
        seq=1,
        bids=(BookLevel(price=Decimal(2990), size=Decimal(5)),),
        asks=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in asks.items()),
        timestamp_ms=0,
    )


async def test_an_intent_is_planned_on_books_or_split_over_pools_and_books(
    tmp_path: Path,
) -> None:
    board = BookBoard(lambda symbol: TOPOLOGY.asset(symbol).decimals, ops)
    board.apply(book_snapshot("clob_a", {"3000.00": "1", "3001.00": "5"}, 500, "0.0001"))
    board.apply(book_snapshot("clob_b", {"2999.00": "1", "3000.00": "2"}, 1000, "0.001"))
    sim = build_venues(TOPOLOGY, tmp_path)["sim"]
    await sim.start()
    try:
        context = StageContext(
            TOPOLOGY, Settings(), venues={"sim": sim}, clock=lambda: T0, books=BoardView(board)
        )
        sent: list[Output] = []

        async def emit(output: Output) -> None:
            sent.append(output)

        on_pools = prioritised_event(
            submission(TOPOLOGY, "ACQUIRE", "WETH", "USDC", "2", client_intent_id="p1"), offset=1
        )
        # The same intent, allowed only the book venues (validate would check their names
        # against the enabled venues; the books here are not in the repository's topology).
        data = submission(TOPOLOGY, "ACQUIRE", "WETH", "USDC", "2", client_intent_id="b1")
        data["constraints"]["allowedVenues"] = ["clob_a", "clob_b"]
        pinned = Intent.model_validate(
            {**data, "id": "intent-01HF7YAT00YKXV1TE2NN8PMX9W", "createdAtMs": T0}
        )
        on_books = make_event(
            "intent.prioritised",
            IntentPrioritised(intent=pinned, priority=5, lane="normal", score=Decimal("0.5")),
            correlation_id=pinned.id,
            seq=4,
            causation_id=None,
            at_ms=T0,
            id_ms=T0,
        )
        records = [
            Record("sep.intents.prioritised", 0, i, T0, None, encode_event(e))
            for i, e in enumerate((on_books, on_pools))
        ]
        await build(context).process(records, emit)
        books_plan, split_plan = plans_of(sent)
        assert {s.venue for s in books_plan.steps} <= {"clob_a", "clob_b"}
        assert all(s.kind is StepKind.ORDER for s in books_plan.steps)
        assert sum(s.amount_out for s in books_plan.steps) == Decimal(2)
        # Allowed every venue, the same intent is split: clob_a's 1 WETH at 3001.50 all-in
        # is cheaper than the sim pool's marginal price (3000 * 1.0005 and rising), clob_b's
        # 3001.999 is not, so the pool takes the rest.
        by_venue = {s.venue: s for s in split_plan.steps}
        assert set(by_venue) == {"sim", "clob_a"}, split_plan.steps
        assert by_venue["sim"].kind is StepKind.SWAP
        assert by_venue["clob_a"].kind is StepKind.ORDER
        assert by_venue["clob_a"].amount_out == Decimal(1)
        assert sum(s.amount_out for s in split_plan.steps) == Decimal(2)
        paid = sum(s.amount_in for s in split_plan.steps)
        assert paid < sum(s.amount_in for s in books_plan.steps)
        alone = plan_intent(
            on_pools.payload_as(IntentPrioritised).intent, 5, {"sim": await sim.pools()}, TOPOLOGY
        )
        assert isinstance(alone, PlanCreated)
        assert paid < sum(s.amount_in for s in alone.plan.steps)
    finally:
        await sim.stop()
