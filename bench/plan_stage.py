"""``sep bench plan_stage``: the plan stage's latency at 1,000 intents/s while pools move.

Builds the plan stage's route graphs (``VenueGraphs``, one venue holding every pool) over the
router benchmark's pool set (``bench/router.py``: hubs and leaf tokens, half exact V3 pools,
half constant-product) at ``--sizes`` pools, then runs the stage's work in one thread as the
stage does it, without Kafka: intents arrive on an open-loop schedule at ``--rate`` per second
(random pairs and amounts as the router benchmark's queries; 80 % DISPOSE, 20 % ACQUIRE) for
``--seconds``, while ``--updates`` pool states per second are replaced by new ones (reserves or
price moved; they go into the market feed's ``PoolSnapshots`` as the feed puts them, JSON
parsing aside). Each batch (the intents that have arrived) takes one snapshot of the pools
(``PoolSnapshots.pools``, as the stage reads the feed), brings the graphs up to date
(``VenueGraphs.sync`` of the planner's pending view, as ``PlanStage.process``), then plans its
intents with ``plan_intent`` (the stage's pure function; ``max_splits`` per ``--splits``) on
``--threads`` threads in ``plan_in_order`` (an intent whose route crosses a pool an earlier
plan of the batch trades on is routed again, and each plan becomes pending), as the stage
does (``SEP_PLAN_THREADS``; the router releases the GIL), and makes each answer into its event
and remembers it (``result_output``, ``Decisions.remember``), as the stage does before handing
it to the producer.  A plan's execution is reported ``--exec-ms`` after it was made (its
pending effects released), so the planner carries about rate x exec-ms plans in flight.

The setup's objects (the pool states, the intents to replay) are frozen out of Python's
collector (``gc.freeze``) before the clock starts, unless ``--no-gc-freeze``: otherwise each
full collection walks them all (85-165 ms at 10k pools on the reference machine) and shows as
plan latency. A stage process holding that many pool states would do the same after loading
them; the run reports the collections' longest pause either way.

Per size and splits it prints, in milliseconds: the plan time of one intent (``plan_intent``
alone), the latency from an intent's arrival to its plan (waiting for its batch's sync and
the intents before it included: the figure the target is about), the sync time per batch, the
rate achieved, and how busy the loop was (time in batches over the run's length; the JSON
line also has each figure's mean). Target: latency p99 below 10 ms at 1,000 intents/s. Ends
with one JSON line ``{"bench": "plan_stage", ...}``.

``--books`` runs the stage on pools *and order books* instead (``bench/_plan_books.py``):
WETH/USDC intents at ``--rate`` while ``--book-updates`` book messages a second move the
clob venues' books, a pools-only pass as the baseline, and the combined route's saving over
the best single venue on a benchmark set, in basis points.
"""

from __future__ import annotations

import argparse
import collections
import gc
import random
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bench import _plan_books, router
from bench._common import json_line, machine, pct
from pipeline.config import Settings
from pipeline.market.snapshots import PoolSnapshots
from pipeline.models.events import (
    Event,
    IntentPrioritised,
    PlanCreated,
    PlanRejected,
    make_event,
)
from pipeline.models.intent import Intent
from pipeline.models.market import PoolState, TickLiquidity
from pipeline.ops import twin
from pipeline.stages.base import MemoryTable, Record, now_ms
from pipeline.stages.batch_threads import BatchThreads
from pipeline.stages.decisions import Decisions
from pipeline.stages.pending_flow import PendingFlow, plan_in_order
from pipeline.stages.plan import Routing, plan_intent, result_output
from pipeline.stages.route_graphs import VenueGraphs
from pipeline.topology import load_topology

VENUE = "bench"
CREATED_MS = 1_700_000_000_000
"""The intents' creation time: the run's clock starts there (their deadlines are 5 min on)."""
TARGET_P99_MS = 10.0
E18 = Decimal(10) ** 18


def pool_state(spec: router.Spec) -> PoolState:
    """The router benchmark's pool ``spec`` as the ``PoolState`` a market feed would publish."""
    if spec[0] == "cp":
        _, pid, t0, t1, r0, r1, fee = spec
        return PoolState(
            pool_id=pid,
            venue=VENUE,
            chain_id=1,
            token0=t0,
            token1=t1,
            reserve0=r0,
            reserve1=r1,
            fee=fee,
        )
    _, pid, t0, t1, price, liquidity, tick, fee, ticks = spec
    # Virtual reserves of the active liquidity: L / sqrtP and L * sqrtP.
    return PoolState(
        pool_id=pid,
        venue=VENUE,
        kind="concentrated",
        chain_id=1,
        token0=t0,
        token1=t1,
        reserve0=max(1, (liquidity << 96) // price),
        reserve1=max(1, liquidity * price >> 96),
        fee=fee,
        sqrt_price_x96=price,
        liquidity=liquidity,
        tick=tick,
        tick_spacing=router.SPACING,
        ticks=tuple(TickLiquidity(tick=t, liquidity_net=n) for t, n in ticks),
    )


def moved(state: PoolState, rng: random.Random) -> PoolState:
    """A new state of the same pool: reserves moved by up to 0.1 %, or a V3 price moved
    within its tick."""
    if state.kind == "constant_product":
        r0 = state.reserve0 + state.reserve0 * rng.randint(1, 1000) // 1_000_000
        return state.model_copy(update={"reserve0": r0})
    assert state.tick is not None
    lo, hi = twin.sqrt_ratio_at_tick(state.tick), twin.sqrt_ratio_at_tick(state.tick + 1)
    return state.model_copy(update={"sqrt_price_x96": rng.randrange(lo, hi)})


def intents(
    specs: Sequence[router.Spec], prices: dict[str, float], n: int, seed: int
) -> list[Intent]:
    """``n`` intents over the router benchmark's query pairs and amounts."""
    rng = random.Random(seed)
    tokens = sorted({t for s in specs for t in s[2:4]})
    address = {t: f"0x{k + 1:040x}" for k, t in enumerate(tokens)}

    def asset(symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "address": address[symbol], "decimals": 18, "chainId": 1}

    out = []
    for i, (a, b, amount) in enumerate(router.queries(specs, prices, n, seed)):
        if rng.random() < 0.8:
            kind, subject, counter, units = "DISPOSE", a, b, amount
        else:  # acquire b for a, about the same worth
            kind, subject, counter = "ACQUIRE", b, a
            units = max(1, int(amount * prices[a] / prices[b]))
        out.append(
            Intent.model_validate(
                {
                    "id": f"intent-{i:026d}",
                    "strategyId": "bench",
                    "type": kind,
                    "assets": [
                        {"asset": asset(subject), "amount": str(Decimal(units) / E18)},
                        {"asset": asset(counter)},
                    ],
                    "constraints": {"maxSlippage": "0.05", "timeWindowMs": 300_000},
                    "createdAtMs": CREATED_MS + i,
                }
            )
        )
    return out


def prioritised(intent: Intent) -> Event:
    """The ``intent.prioritised`` event the plan stage would read for ``intent``."""
    return make_event(
        "intent.prioritised",
        IntentPrioritised(intent=intent, priority=5, lane="normal", score=Decimal("0.5")),
        correlation_id=intent.id,
        seq=4,
        causation_id=None,
        at_ms=intent.created_at_ms or 0,
        id_ms=intent.created_at_ms or 0,
    )


def run(
    n_pools: int,
    splits: int,
    rate: float,
    seconds: float,
    updates: float,
    seed: int,
    freeze: bool = True,
    threads: int = 1,
    exec_ms: float = 200.0,
) -> dict[str, Any]:
    specs, prices = router.universe(n_pools, seed)
    states = [pool_state(s) for s in specs]
    topology = load_topology()
    routing = {VENUE: Routing(max_splits=splits)}
    graphs = VenueGraphs()
    # The stage's view of the market: the feed's snapshots (pipeline.market.snapshots).
    book = PoolSnapshots()
    for state in states:
        book.put(state)
    started = time.perf_counter()
    graphs.sync(book.pools())
    build_ms = (time.perf_counter() - started) * 1e3
    n = max(1, int(rate * seconds))
    todo = intents(specs, prices, n, seed + 1)
    sources = [prioritised(intent) for intent in todo]
    decisions = Decisions(MemoryTable())
    record = Record("sep.intents.prioritised", 0, 0, 0, None, b"")
    rng = random.Random(seed + 2)
    arrivals = [i / rate for i in range(n)]
    n_updates = int(updates * seconds)
    update_at = [i / updates for i in range(n_updates)] if updates > 0 else []
    pending = PendingFlow()
    in_flight: collections.deque[tuple[float, list[str]]] = collections.deque()
    """(made at, its step ids): reported executed ``exec_ms`` later."""
    rerouted = pending_max = 0
    plan_ms: list[float] = []
    latency_ms: list[float] = []
    sync_ms: list[float] = []
    batch_ms: list[float] = []
    created = applied = nxt = 0
    pool = BatchThreads(threads, "plan")
    pauses: list[float] = []
    started_gc = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started_gc[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started_gc[0]) * 1e3)

    if freeze:
        gc.collect()
        gc.freeze()
    gc.callbacks.append(on_gc)
    t0 = time.perf_counter()
    while nxt < n:
        now = time.perf_counter() - t0
        if arrivals[nxt] > now:
            time.sleep(min(arrivals[nxt] - now, 0.001))
            continue
        # The market feed replaced the states due by now (a new object per moved pool).
        while applied < n_updates and update_at[applied] <= now:
            k = rng.randrange(len(states))
            states[k] = moved(states[k], rng)
            book.put(states[k])
            applied += 1
        batch_end = nxt
        while batch_end < n and arrivals[batch_end] <= now:
            batch_end += 1
        # Executions reported since the last batch: released (the venue's states are taken
        # to include them, as a venue without versions).
        while in_flight and in_flight[0][0] <= now - exec_ms / 1000:
            for step_id in in_flight.popleft()[1]:
                pending.filled(step_id, None)
        # One batch, as PlanStage.process: a snapshot of the pools, the graphs synced to the
        # pending view, then the intents planned in order.  The clock is the intents' own.
        s0 = time.perf_counter()
        snapshot = book.pools()
        stamp = CREATED_MS + int(now * 1000)
        current = graphs.sync(snapshot, pending.adjusted(snapshot, stamp))
        sync_ms.append((time.perf_counter() - s0) * 1e3)
        took: dict[int, float] = {}  # plan time per intent, routed once or twice
        routed: collections.Counter[int] = collections.Counter()

        def plan(
            i: int,
            snapshot: Any = snapshot,
            current: Any = current,
            took: dict[int, float] = took,
            routed: collections.Counter[int] = routed,
        ) -> PlanCreated | PlanRejected:
            p0 = time.perf_counter()
            result = plan_intent(todo[i], 5, snapshot, topology, current, routing)
            took[i] = took.get(i, 0.0) + (time.perf_counter() - p0) * 1e3
            routed[i] += 1
            return result

        def refresh(snapshot: Any = snapshot, stamp: int = stamp) -> None:
            graphs.sync(snapshot, pending.adjusted(snapshot, stamp))

        # As the stage: the batch's intents on ``threads`` threads, taken in order; each
        # answer made into its event and remembered against redelivery (decisions.py).
        batch = range(nxt, batch_end)
        planned = plan_in_order(batch, plan, refresh, pending, stamp, pool)
        for i, result in zip(batch, planned, strict=True):
            output = result_output(
                sources[i], result, now_ms(), topic=topology.stage("plan").events_topic
            )
            decisions.remember(todo[i].id, [output], record)
            plan_ms.append(took[i])
            latency_ms.append((time.perf_counter() - t0 - arrivals[i]) * 1e3)
            created += isinstance(result, PlanCreated)
            if isinstance(result, PlanCreated):
                in_flight.append((now, [step.step_id for step in result.plan.steps]))
        rerouted += sum(1 for count in routed.values() if count > 1)
        pending_max = max(pending_max, len(pending))
        batch_ms.append((time.perf_counter() - s0) * 1e3)
        nxt = batch_end
    elapsed = time.perf_counter() - t0
    pool.close()
    gc.callbacks.remove(on_gc)
    if freeze:
        gc.unfreeze()
    fig: dict[str, Any] = {
        "pools": n_pools,
        "splits": splits,
        "threads": threads,
        "intents": n,
        "plans_created": created,
        "pool_updates": applied,
        "batches": len(sync_ms),
        "build_ms": round(build_ms, 1),
        "exec_ms": exec_ms,
        "rerouted": rerouted,
        "pending_max": pending_max,
        "gc_frozen": freeze,
        "gc_pauses": len(pauses),
        "gc_max_ms": round(max(pauses, default=0.0), 1),
        "achieved_rate": round(n / elapsed, 1),
    }
    # The share of the run spent in batches (syncing, then planning): near 1, any slow intent
    # queues the rest.
    fig["busy"] = round(sum(batch_ms) / 1e3 / elapsed, 3)
    for name, values in (("plan", plan_ms), ("latency", latency_ms), ("sync", sync_ms)):
        fig[f"{name}_mean_ms"] = round(sum(values) / len(values), 3)
        fig[f"{name}_p50_ms"] = round(pct(values, 0.5), 3)
        fig[f"{name}_p99_ms"] = round(pct(values, 0.99), 3)
        fig[f"{name}_max_ms"] = round(max(values), 3)
    fig["within_target"] = fig["latency_p99_ms"] < TARGET_P99_MS
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench plan_stage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="1000,10000", help="pool counts")
    parser.add_argument("--splits", default="1,4", help="max_splits values to run")
    parser.add_argument("--rate", type=float, default=1000.0, help="intents per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--updates", type=float, default=100.0, help="pool updates per second")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--threads",
        type=int,
        default=Settings().plan_threads,
        help="threads a batch is planned on, as the stage's SEP_PLAN_THREADS "
        "(default: that setting, 2)",
    )
    parser.add_argument(
        "--exec-ms",
        type=float,
        default=200.0,
        help="how long a plan is in flight until its execution is reported",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="freeze",
        action="store_false",
        help="leave the setup's objects to the collector",
    )
    books = parser.add_argument_group(
        "books", "--books: pools and order books (bench/_plan_books.py) instead of the pool sizes"
    )
    books.add_argument(
        "--books",
        action="store_true",
        help="plan WETH/USDC on the sim pools and the clob_a/clob_b books while they move; "
        "a pools-only pass first, as the baseline",
    )
    books.add_argument("--book-updates", type=float, default=100.0, help="book messages per second")
    books.add_argument("--max-weth", type=float, default=200.0, help="largest intent, WETH")
    books.add_argument("--set", type=int, default=500, help="intents in the benchmark set")
    args = parser.parse_args(argv)
    if args.books:
        found = _plan_books.run(
            args.rate, args.seconds, args.book_updates, args.seed, args.max_weth, args.set
        )
        print(f"machine: {machine()}")
        _plan_books.report(found)
        print(json_line({"bench": "plan_stage", "books": True, "machine": machine(), **found}))
        return 0
    results = [
        run(
            int(size),
            int(splits),
            args.rate,
            args.seconds,
            args.updates,
            args.seed,
            args.freeze,
            args.threads,
            args.exec_ms,
        )
        for size in args.sizes.split(",")
        for splits in args.splits.split(",")
    ]
    print(f"machine: {machine()}")
    setup = "frozen out of" if args.freeze else "left to"
    print(
        f"plan stage at {args.rate:g} intents/s with {args.updates:g} pool updates/s, "
        f"{args.seconds:g} s per run, max_hops 3, {args.threads} planning thread(s), "
        f"plans in flight {args.exec_ms:g} ms, setup {setup} the collector; milliseconds"
    )
    print(
        f"{'pools':>6} {'splits':>6} {'plan p50':>9} {'plan p99':>9} {'plan max':>9} "
        f"{'lat p50':>8} {'lat p99':>8} {'lat max':>8} {'sync p50':>9} {'sync p99':>9} "
        f"{'rate/s':>8} {'busy':>5} {'gc max':>7} {'target':>7}"
    )
    for f in results:
        print(
            f"{f['pools']:>6} {f['splits']:>6} {f['plan_p50_ms']:>9.3f} "
            f"{f['plan_p99_ms']:>9.3f} {f['plan_max_ms']:>9.2f} {f['latency_p50_ms']:>8.3f} "
            f"{f['latency_p99_ms']:>8.2f} {f['latency_max_ms']:>8.2f} "
            f"{f['sync_p50_ms']:>9.3f} {f['sync_p99_ms']:>9.3f} {f['achieved_rate']:>8.1f} "
            f"{f['busy']:>5.2f} {f['gc_max_ms']:>7.1f} "
            f"{'met' if f['within_target'] else 'MISSED':>7}"
        )
    for f in results:
        print(
            f"{f['pools']:>6} pools, {f['splits']} splits: {f['rerouted']} of {f['intents']} "
            f"intents routed again behind an earlier plan of their batch; at most "
            f"{f['pending_max']} plans in flight"
        )
    print(f"target: arrival -> plan p99 < {TARGET_P99_MS:g} ms")
    print(
        json_line(
            {
                "bench": "plan_stage",
                "machine": machine(),
                "rate": args.rate,
                "updates_per_s": args.updates,
                "seconds": args.seconds,
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
