"""Plan: route each prioritised intent over the venues' pools with the Rust operator.

Record shapes:
    in   sep.intents.prioritised  Event(intent.prioritised{intent, priority, lane})
    in   sep.executions           Event(exec.step_filled{stepId, landedAt} | exec.step_failed
                                  | exec.completed | exec.failed | intent.expired | ...)
                                  from Kafka; fused with execute and
                                  ``SEP_FUSION_FEEDBACK=1``, fed back in memory
                                  (``pipeline.topology.fusion``): the reports of a pass
                                  come first in the next pass's records, and the chain
                                  does not consume the topic
    out  sep.plans                Event(plan.created{plan, intent, priority})
                                | Event(plan.rejected{reason, detail})
    out  sep.control              Event(venue.breaker_changed) when a probe half-opens a
                                  venue's breaker (``pipeline.breakers.planning``)

A kill switch covering the intent's strategy: ``plan.rejected`` reason ``killed``
(``killed.py``).  A venue whose circuit breaker is not closed is routed around; with nothing
left, ``plan.rejected`` reason ``breaker_open`` names the breakers.

Intents are routed on the pools as read *with this planner's own plans not executed yet still
applied* (``pending_flow.py``): a plan's swaps are pending from the moment it is made until
its execution report says where it landed and the pool states include it, or it failed.
Within a batch the intents are routed side by side on the view the batch found; one whose
route crosses a pool an earlier plan of the batch trades on is routed again on the view with
that plan, so each ``min_out`` accounts for the plans before it.

DISPOSE sells exactly ``assets[0].amount``: an EXACT_IN swap whose ``min_out`` is the quote
less ``max_slippage``.  ACQUIRE buys exactly ``assets[0].amount``: an EXACT_OUT swap whose
``max_in`` is the quote plus ``max_slippage``.  A route whose price impact alone exceeds
``max_slippage`` is refused before anything is sent.

State: ``sep-plan-decisions`` (intent id -> the event given), so a redelivered intent gets the
plan it was given, not one made on pools that have moved since (``decisions.py``).  The pending
flow is in memory: after a restart or a rebalance the plans made before are not counted (they
are not added again when recalled: their executions may be over, and an effect without its
reports would be kept until it expires).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from pipeline import ops
from pipeline.breakers.planning import PlanningBreakers
from pipeline.codec import decode_event
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.ids import deterministic_ulid
from pipeline.market.board import AggregatedBook
from pipeline.models.base import built
from pipeline.models.events import (
    Event,
    IntentPrioritised,
    PlanCreated,
    PlanRejected,
    make_event,
)
from pipeline.models.intent import Intent, IntentType
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionPlan
from pipeline.plugins.venue import Routing as Routing  # re-exported: bench/plan_stage.py
from pipeline.plugins.venue import routing_of
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.batch_threads import BatchThreads
from pipeline.stages.decisions import Decisions
from pipeline.stages.killed import killed_plan
from pipeline.stages.pending_flow import PendingFlow, RouteStats, plan_in_order
from pipeline.stages.pool_steps import MAX_HOPS, PPM, gas_price_units, pool_step, route_fees
from pipeline.stages.report_digest import INTENT_TOPIC, Report, read_report
from pipeline.stages.route_graphs import VenueGraphs
from pipeline.stages.split_planning import PoolRoute, plan_on_pools_and_books
from pipeline.stages.table_names import PLAN_DECISIONS
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    venue: str
    route: ops.GraphRoute


_DEFAULT_ROUTING = Routing()
"""A venue's routing when it declares none (frozen: one object serves every intent)."""


def _best(
    intent: Intent,
    graphs: Mapping[str, ops.RouteGraph],
    topology: Topology,
    routing: Mapping[str, Routing],
) -> Candidate | None:
    subject, counter = intent.subject.asset, intent.counter.asset
    amount = subject.to_base_units(intent.subject.amount or Decimal(0))
    allowed = intent.constraints.allowed_venues
    best: Candidate | None = None
    for venue, graph in sorted(graphs.items()):
        if allowed is not None and venue not in allowed:
            continue
        how = routing.get(venue) or _DEFAULT_ROUTING
        # Gas is priced in the token the comparison is made in: what is received (DISPOSE)
        # or what is paid (ACQUIRE) -- the counter asset either way.
        gas = gas_price_units(counter.symbol, topology) if how.pays_gas else None
        if intent.type is IntentType.DISPOSE:
            route = graph.best_route(
                subject.symbol, counter.symbol, amount, MAX_HOPS, how.max_splits, gas
            )
            better = route is not None and (
                best is None or route.amount_out > best.route.amount_out
            )
        else:
            route = graph.best_route_exact_out(
                counter.symbol, subject.symbol, amount, MAX_HOPS, how.max_splits, gas
            )
            better = route is not None and (best is None or route.amount_in < best.route.amount_in)
        if better and route is not None:
            best = Candidate(venue, route)
    return best


def plan_intent(
    intent: Intent,
    priority: int,
    pools: Mapping[str, Sequence[PoolState]],
    topology: Topology,
    graphs: Mapping[str, ops.RouteGraph] | None = None,
    routing: Mapping[str, Routing] | None = None,
    book: AggregatedBook | None = None,
) -> PlanCreated | PlanRejected:
    """The pure part of the stage: an intent and the pools now -> a plan or a refusal.

    ``graphs``: the venues' route graphs already holding ``pools`` (the stage keeps them
    current between batches); built from ``pools`` when omitted.  ``routing``: per venue,
    how many parallel paths a plan may use and whether swaps pay gas (default: one path).
    ``book``: the aggregated order book of the intent's pair, if any venue has one: then the
    pools-only plan, the books-only plan and a split across both are compared after fees and
    gas, and the best is taken (``split_planning.py``).
    """
    if graphs is None:
        graphs = VenueGraphs().sync(pools)
    routing = routing or {}
    result, candidate = _plan_on_pools(intent, priority, pools, topology, graphs, routing)
    if book is None:
        return result
    pooled = None
    if candidate is not None:
        how = routing.get(candidate.venue, Routing())
        gas = gas_price_units(intent.counter.asset.symbol, topology) if how.pays_gas else None
        pooled = PoolRoute(candidate.venue, candidate.route, (gas or 0) * candidate.route.gas)
    return plan_on_pools_and_books(
        intent, priority, result, pooled, book, graphs, topology, routing
    )


def _plan_on_pools(
    intent: Intent,
    priority: int,
    pools: Mapping[str, Sequence[PoolState]],
    topology: Topology,
    graphs: Mapping[str, ops.RouteGraph],
    routing: Mapping[str, Routing],
) -> tuple[PlanCreated | PlanRejected, Candidate | None]:
    """The best single pool venue's plan, and its route."""
    subject, counter = intent.subject.asset, intent.counter.asset
    try:
        candidate = _best(intent, graphs, topology, routing)
    except ops.RouteQueryError as exc:
        # Zero base units (an amount below one unit of the asset) or more than 2**128 - 1:
        # the router cannot answer, and bad input never crashes a stage.
        units = subject.to_base_units(intent.subject.amount or Decimal(0))
        return PlanRejected(
            reason="unroutable_amount",
            detail=(
                f"{intent.subject.amount} {subject.symbol} is {units} base units, which the router "
                f"refuses ({exc.code}): {exc}"
            ),
        ), None
    except ops.RustOpsError as exc:
        return PlanRejected(reason="route_error", detail=f"{exc.code}: {exc}"), None
    asset_in, asset_out = (
        (subject, counter) if intent.type is IntentType.DISPOSE else (counter, subject)
    )
    if candidate is None:
        return PlanRejected(
            reason="no_route",
            detail=(
                f"no route from {asset_in.symbol} to {asset_out.symbol} within {MAX_HOPS} hops on "
                f"venues {sorted(pools)} for this amount"
            ),
        ), None
    route = candidate.route
    slippage = intent.constraints.max_slippage
    impact = Decimal(route.price_impact_ppm) / PPM
    if impact > slippage:
        return PlanRejected(
            reason="price_impact",
            detail=(f"price impact {impact:.6f} is above max slippage {slippage:f}"),
        ), None
    plan_id = "plan-" + deterministic_ulid(intent.created_at_ms or 0, intent.id, "plan")
    # A split route is several pool-disjoint paths: one step each, executed in turn.
    venue = candidate.venue
    steps = tuple(
        [
            pool_step(f"{plan_id}-{k}", venue, path, intent, asset_in, asset_out)
            for k, path in enumerate(route.paths, 1)
        ]
    )
    # Built, not validated (``built``): amounts in the assets' decimals, the impact in
    # millionths, the score within 0..100 as the impact is at most the slippage.
    plan = built(
        ExecutionPlan,
        id=plan_id,
        intent_id=intent.id,
        steps=steps,
        estimated_out=asset_out.from_base_units(route.amount_out),
        estimated_cost=route_fees(route, asset_in).quantize(_unit(asset_in.decimals)),
        estimated_duration_ms=0,
        risk_score=min(100, int(impact / slippage * 100)) if slippage > 0 else 100,
        price_impact=impact,
    )
    return PlanCreated(plan=plan, intent=intent, priority=priority), candidate


class PlanStage:
    name = "plan"

    def __init__(self, context: StageContext) -> None:
        self._context = context
        self._topic = context.topology.stage(self.name).events_topic
        self._graphs = VenueGraphs()
        self._routing = {name: routing_of(venue) for name, venue in context.venues.items()}
        self._threads = BatchThreads(context.settings.plan_threads, "plan")
        self._decisions = Decisions(
            context.table(
                PLAN_DECISIONS, "intent id -> the plan event given, re-emitted on redelivery"
            ),
            ttl_s=context.settings.decision_ttl_s,
        )
        self.pending = PendingFlow()
        self._route_stats = RouteStats()
        # One batch plans at a time: the pending flow and the graphs are one sequence.
        self._planning = asyncio.Lock()
        spec = context.topology.stage(self.name)
        # The inputs after the intents': ``sep.executions``.
        self._reports_topics = frozenset(spec.inputs[1:])
        self._breakers = PlanningBreakers(
            context.topology.breakers,
            context.control,
            CONTROL_TOPIC if CONTROL_TOPIC in spec.outputs else None,
            context.topology.topic(spec.inputs[0]).partitions,
            context.venues,
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._threads.close()

    async def _pools(self) -> dict[str, list[PoolState]]:
        """Each venue's pools: as published on the market topic, else asked of the venue.

        A venue with a market source is read from the feed (no round trip to a node per
        batch); until its first snapshot has arrived, it is asked directly.
        """
        context = self._context
        published = context.market.pools() if context.market is not None else {}
        pools: dict[str, list[PoolState]] = {}
        asked: list[str] = []
        for name in context.venues:
            if name in context.market_venues and published.get(name):
                pools[name] = published[name]  # never modified once handed out
            else:
                asked.append(name)
        states = await asyncio.gather(*(context.venues[name].pools() for name in asked))
        pools.update(zip(asked, states, strict=True))
        return pools

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        # Off Kafka a report is read for what the pending flow needs (``report_digest``);
        # the rest (intents, odd records) is decoded as an event.
        read = [(record, self._read(record)) for record in records]
        self._adopt_recovered_plans()
        # Execution reports first: they are of plans made in earlier batches, and this
        # batch's plans must not count what has failed since.
        pending = self.pending
        pairs: list[tuple[Record, Event]] = []
        for record, event in read:
            if isinstance(event, Report):
                pending.observe_report(event)
            else:
                pending.observe(event)
                if event.topic == INTENT_TOPIC:
                    pairs.append((record, event))
        if not pairs:
            return
        # A redelivered intent gets the plan it was given, not a new one (see decisions.py).
        fresh = self._decisions.unanswered(e for _, e in pairs)
        partitions = {e.correlation_id: r.partition for r, e in pairs}
        results, changes = await self._plan(fresh, partitions) if fresh else ({}, [])
        for change in changes:  # a breaker half-opened: before the probe's plan goes out
            await emit(change)
        now = self._context.clock()
        await self._decisions.answer(
            pairs,
            lambda event: [
                result_output(event, results[event.correlation_id], now, topic=self._topic)
            ],
            emit,
        )

    def _read(self, record: Record) -> Event | Report:
        if record.event is None and record.topic in self._reports_topics:
            report = read_report(record.value)
            if report is not None:
                return report
        return event_of(record)

    def _books_of(self, jobs: Sequence[IntentPrioritised]) -> dict[tuple[str, str], AggregatedBook]:
        """The aggregated book of each job's pair that has one (either way round)."""
        view = self._context.books
        found: dict[tuple[str, str], AggregatedBook] = {}
        if view is None:
            return found
        for pair in {_pair(job.intent) for job in jobs}:
            book = view.book(*pair) or view.book(pair[1], pair[0])
            if book is not None:
                found[pair] = book
        return found

    def _adopt_recovered_plans(self) -> None:
        """Count the plans recovered from the changelog as in flight.

        After a restart (or a partition moving here) the plans remembered for redelivery were
        made by an earlier process: some are still being executed, and planning as if they
        were not priced new intents on pools they were about to move (a kill -9 under load
        failed an intent's 5 % slippage).  Each counts from when it was made, so the pending
        flow's last resorts release the ones whose reports never come here (executed before
        the restart) within ``UNHEARD_S`` of their making.
        """
        for intent_id, outputs in self._decisions.recovered():
            for output in outputs:
                event = decode_event(output.value)
                if event.topic == "plan.created":
                    created = event.payload_as(PlanCreated)
                    made_ms = int(event.timestamp.timestamp() * 1000)
                    self.pending.add(intent_id, created.plan, made_ms, created.intent.deadline_ms)

    async def _plan(
        self, events: Sequence[Event], partitions: Mapping[str, int]
    ) -> tuple[dict[str, PlanCreated | PlanRejected], list[Output]]:
        """The answer for each event's intent, by intent id (each plan made is pending), and
        the breaker changes to publish first."""
        killed: dict[str, PlanCreated | PlanRejected] = {}
        live: list[Event] = []
        for event in events:
            refusal = killed_plan(self._context.control, event.payload_as(IntentPrioritised).intent)
            if refusal is not None:
                killed[event.correlation_id] = refusal
            else:
                live.append(event)
        if not live:
            return killed, []
        results, changes = await self._route(live, partitions)
        return {**killed, **results}, changes

    async def _route(
        self, events: Sequence[Event], partitions: Mapping[str, int]
    ) -> tuple[dict[str, PlanCreated | PlanRejected], list[Output]]:
        async with self._planning:
            pools = await self._pools()  # one read per batch: the venues' state now
            now = self._context.clock()
            pending, venue_graphs = self.pending, self._graphs
            # Only the pools that changed (or carry new pending effects) are re-applied.
            graphs = venue_graphs.sync(pools, pending.adjusted(pools, now))
            topology, routing = self._context.topology, self._routing
            jobs = [event.payload_as(IntentPrioritised) for event in events]
            # Venues whose breakers are not closed: excluded, or probed (pipeline/breakers).
            admissions = self._breakers.admit(
                [(job.intent, partitions.get(job.intent.id, 0)) for job in jobs], now
            )
            admitted = {job.intent.id: a for job, a in zip(jobs, admissions, strict=True)}
            # Each pair's aggregated book, read here on the loop's thread (a book is
            # re-aggregated lazily when read), then only read by the routing threads.
            books = self._books_of(jobs)

            def route(job: IntentPrioritised) -> PlanCreated | PlanRejected:
                book = books.get(_pair(job.intent)) if books else None
                return admitted[job.intent.id].route(
                    graphs,
                    lambda usable: plan_intent(
                        job.intent, job.priority, pools, topology, usable, routing, book
                    ),
                )

            def refresh() -> None:
                # Within the batch (same pools, same now) only the last plans' pools moved.
                changed = pending.adjusted_touched(pools, now)
                if changed is None:
                    venue_graphs.sync(pools, pending.adjusted(pools, now))
                else:
                    venue_graphs.put_instead(changed)

            planned = plan_in_order(
                jobs,
                route,
                refresh,
                pending,
                now,
                self._threads,
                self._route_stats,
            )
            changes: list[Output] = []
            answers: dict[str, PlanCreated | PlanRejected] = {}
            for event, admission, result in zip(events, admissions, planned, strict=True):
                answers[event.correlation_id], published = self._breakers.settle(
                    admission, result, now
                )
                changes += published
            return answers, changes


@cache
def _unit(decimals: int) -> Decimal:
    """One base unit of an asset of ``decimals`` (what a cost is rounded to)."""
    return Decimal(1).scaleb(-decimals)


def _pair(intent: Intent) -> tuple[str, str]:
    return intent.subject.asset.symbol, intent.counter.asset.symbol


def plan_output(
    event: Event, pools: Mapping[str, Sequence[PoolState]], topology: Topology, now: int
) -> Output:
    """The router's plan for ``event`` (no venue quote), as the stage would emit it."""
    payload = event.payload_as(IntentPrioritised)
    return result_output(
        event,
        plan_intent(payload.intent, payload.priority, pools, topology),
        now,
        topic=topology.stage("plan").events_topic,
    )


def result_output(
    event: Event, result: PlanCreated | PlanRejected, now: int, *, topic: str
) -> Output:
    intent = event.payload_as(IntentPrioritised).intent
    event_type = "plan.created" if isinstance(result, PlanCreated) else "plan.rejected"
    out = make_event(
        event_type,
        result,
        correlation_id=intent.id,
        seq=event.seq + 1,
        causation_id=event.event_id,
        at_ms=now,
        id_ms=intent.created_at_ms or now,
    )
    return Output.of_event(topic, out)


def build(context: StageContext) -> PlanStage:
    return PlanStage(context)
