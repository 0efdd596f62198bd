"""The planner's own flow in flight: plans not executed yet, kept applied to its view of the pools.

Priced against the pool states as last published, a batch of intents selling into one pool
would each get a ``min_out`` that assumes it trades alone, and under load our own intents
would fail our own slippage checks.  A real router accounts for its pending flow, so the plan
stage routes on the pools as read with ``adjusted(pools)`` in their place: those states with
the swaps of every plan it made that have not reached them yet.

    add(intent, plan, now, deadline)  plan.created    its legs become pending effects
    filled(step, landed_at)        exec.step_filled   it is in the states of version >= landed_at
    failed(step)                   exec.step_failed   it never moved a pool
    ended(intent)                  exec.completed, exec.failed, intent.expired: no more lands
    adjusted(pools, now_ms)        the pools with effects pending, those effects applied
    observe(event)                 any record of sep.executions (Kafka, or fed back in
                                   memory by a fused executor): one of the above
    observe_report(report)         the same, read off a record's bytes without an event
                                   (``report_digest.read_report``)

When an effect is released, i.e. the race between an execution's report and the pool states:

- A filled step stays applied until the pool's state has ``version >= landed_at``
  (``PoolState.version``: the block a chain pool was read at; the sim ledger's number of the
  last fill that moved it).  Released on the report alone it would be forgotten while the
  states planned on still lack it (the market feed trails the chain by a poll); kept once a
  state has it, it would be counted twice.  So it is tied to versions, not to arrival order.
- A failed step, or one whose intent ended before it filled, is released at once.
- A state can also arrive *before* the report (the sim venue is read directly each batch):
  until the report comes, the trade is in the state and still pending here, so counted twice.
  Unfused, that lasts one hop of ``sep.executions`` (executor -> broker -> this stage), and
  errs on the cautious side for flow in the same direction.  Fed back in memory by a fused
  executor, no hop: its reports are observed first in the next batch, before the pools are
  read again.  (Measured, Session 10: a one-worker burst then had no slippage failures
  against hundreds; with two workers more, as the double count no longer covers the other
  worker's flow in the same direction, which no planner here counts.)
- Last resorts, for reports that never come here: ``UNHEARD_S`` after the plan if nothing
  at all was heard of its execution (not even ``exec.started``: its reports go to another
  worker, the assignment not co-partitioned), and otherwise the intent's deadline plus the
  executor's receipt grace (no report can be due after that), at most ``HOLD_S`` after the
  plan (a rebalance moved its ``sep.executions`` partition away mid-execution).  Keeping an
  effect without its reports would distort the view for good; dropping it only brings back
  the cost this module removes.

Where the reports come from (``observe`` takes them either way):

- Unfused (plan and execute in different groups or workers): ``sep.executions`` from Kafka,
  in the planner's consumer group, beside the intents it plans.
- Fused with execute (``[..., plan, execute]``, ``pipeline.topology.fusion``) and
  ``SEP_FUSION_FEEDBACK=1``: the executor's outputs on ``sep.executions`` are fed back in
  memory, whenever it emits them (in the pass, or a receipt or timeout later): each is
  observed at the start of the next batch, and the chain does not consume
  ``sep.executions`` at all.  A plan is executed by the
  pass that made it, so every report of a plan made here reaches this view, a rebalance
  or not (a revoke waits for the pass under way).  The other way round is what the last
  resorts are for: after a restart or a rebalance the plans recalled from the changelog
  (``PlanStage._adopt_recovered_plans``) were made, and executed, by another process or
  worker, whose reports this one never hears (unfused, often the same: they went to the
  worker that held the partition then).  One whose intent is redelivered here is executed
  here again and heard; the rest are released ``UNHEARD_S`` after their making, at the
  latest ``HOLD_S``.

Each effect is applied with the router's own exact math (``pipeline.ops``: constant-product as
Uniswap V2; V3 with tick crossing where the state has its ticks), re-simulated on the pool as
it is now, so a moved pool moves the effect's other side with it: an EXACT_IN leg pays its
planned ``amount_in`` in, an EXACT_OUT leg takes its planned ``amount_out`` out.  (A multi-hop
step's later legs keep their planned input; the executed hop passes on what the first
actually gave, which differs by the drift of the first pool: second order.)

What one planner cannot see: with several workers each plans only the intents of its
partitions, and hears only their executions (``sep.executions`` is keyed like
``sep.intents.prioritised`` and read in the same consumer group, so an intent's plan and its
reports reach the same worker when the assignment is co-partitioned).  Another worker's
pending flow reaches this view only when it lands in the published states.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from pipeline import ops
from pipeline.models.events import (
    Event,
    ExecStepFailed,
    ExecStepFilled,
    PlanCreated,
    PlanRejected,
)
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionPlan, StepKind, SwapMode
from pipeline.ops.graph import has_v3_state
from pipeline.ops.v3 import v3_pool, virtual_reserves, zero_for_one
from pipeline.stages.batch_threads import BatchThreads
from pipeline.stages.execute import RECEIPT_GRACE_S
from pipeline.stages.report_digest import Report

log = logging.getLogger(__name__)

HOLD_S = 60.0
"""The longest an effect stays pending.  Plans are executed within seconds; an effect older
than this has lost its reports."""
UNHEARD_S = 10.0
"""How long a plan may go without any report of its execution (``exec.started`` comes as
the executor takes it up: milliseconds, seconds under a backlog) before its reports are taken
to go elsewhere."""

_ENDINGS = frozenset({"exec.completed", "exec.failed", "intent.expired"})
"""Reports after which nothing more of an intent's plan lands."""
_REPORTS = _ENDINGS | {
    "exec.started",
    "exec.step_submitted",
    "exec.step_filled",
    "exec.step_failed",
}
_HOLD_MS = int(HOLD_S * 1000)
_UNHEARD_MS = int(UNHEARD_S * 1000)
_GRACE_MS = int(RECEIPT_GRACE_S * 1000)
"""After its deadline the executor still waits this long for a sent step's receipt."""

PoolKey = tuple[str, str]
"""(venue, pool id)."""


class LegEffect(NamedTuple):
    """One step's swap on one pool, in base units (a tuple: made for every leg of every
    plan, ~0.3 us against ~1 for a frozen dataclass)."""

    step_id: str
    token_in: str
    exact_in: bool
    amount: int
    """EXACT_IN: what the pool is paid. EXACT_OUT: what it pays out."""


@dataclass
class _Step:
    intent_id: str
    pools: list[PoolKey]
    landed_at: int | None = None


@dataclass
class _PoolFlow:
    """One pool's pending effects in the order they were planned, and the view built on them."""

    effects: dict[str, LegEffect] = field(default_factory=dict)
    """By step id (a step uses a pool once: the router's paths never repeat a pool)."""
    landed: set[str] = field(default_factory=set)
    """Steps reported filled: released once the pool's state reaches their version."""
    base: PoolState | None = None
    """The state ``adjusted`` was built on (``None``: rebuild)."""
    fresh: list[LegEffect] = field(default_factory=list)
    """The effects added since ``adjusted`` was built (the last of ``effects``, in order):
    kept apart so that bringing the view to one more plan does not walk every effect (a busy
    pool has hundreds pending; copying them per plan was 14 % of a worker's planning)."""
    adjusted: PoolState | None = None
    place: int = 0
    """Where the pool was in its venue's list last time (checked before use)."""

    def add(self, effect: LegEffect) -> None:
        self.effects[effect.step_id] = effect
        self.fresh.append(effect)

    def view_of(self, base: PoolState) -> PoolState:
        """``base`` with every effect applied; only effects added since the last call are
        applied when ``base`` is the same object (the common case within a batch)."""
        if base is not self.base or self.adjusted is None:
            # ``None`` until built: an exception on the way leaves it to be rebuilt.
            self.base, self.adjusted = base, None
            self.adjusted = apply_effects(base, self.effects.values())
        elif self.fresh:
            self.adjusted = apply_effects(self.adjusted, self.fresh)
        self.fresh.clear()
        return self.adjusted


def apply_effects(state: PoolState, effects: Iterable[LegEffect]) -> PoolState:
    """``state`` after each of ``effects`` in turn, as ``apply_effect`` one after the other
    would leave it (an effect the pool cannot take is left out), ``state`` itself if none
    moved it.  A constant-product pool is moved on its two reserves and copied once: a new
    state per effect was most of rebuilding a busy pool's view (hundreds of effects, each
    time a state arrives or an effect is released)."""
    if has_v3_state(state):
        for effect in effects:
            state = apply_effect(state, effect)
        return state
    reserves = (state.reserve0, state.reserve1)
    moved = False
    for effect in effects:
        try:
            reserves = _cp_swap(state, reserves, effect)
        except (ValueError, ops.RustOpsError) as exc:
            _left_out(state, effect, exc)
            continue
        moved = True
    if not moved:
        return state
    return _with_reserves(state, *reserves)


def apply_effect(state: PoolState, effect: LegEffect) -> PoolState:
    """``state`` after ``effect``, with the router's math; ``state`` itself if the pool cannot
    take it (beyond its liquidity, or its known tick range): the router will not route
    through that amount either, and one odd pool must not stop the stage."""
    try:
        if has_v3_state(state):
            return _apply_v3(state, effect)
        return _apply_cp(state, effect)
    except (ValueError, ops.RustOpsError) as exc:
        _left_out(state, effect, exc)
        return state


def _left_out(state: PoolState, effect: LegEffect, exc: Exception) -> None:
    log.debug(
        "pending effect left out of the view",
        extra={"pool": state.pool_id, "step": effect.step_id, "error": str(exc)},
    )


def _apply_cp(state: PoolState, effect: LegEffect) -> PoolState:
    return _with_reserves(state, *_cp_swap(state, (state.reserve0, state.reserve1), effect))


def _cp_swap(state: PoolState, reserves: tuple[int, int], effect: LegEffect) -> tuple[int, int]:
    """The constant-product pool ``state`` (its tokens and fee) holding ``reserves``: its
    reserves after ``effect``.  The whole input goes into the pool (its fee stays there), as
    the sim venue and Uniswap V2 do; the router quotes the same formulas."""
    zero_in = zero_for_one(state, effect.token_in)
    reserve_in, reserve_out = reserves if zero_in else (reserves[1], reserves[0])
    if effect.exact_in:
        paid, out = effect.amount, ops.amount_out(reserve_in, reserve_out, effect.amount, state.fee)
    else:
        paid, out = ops.amount_in(reserve_in, reserve_out, effect.amount, state.fee), effect.amount
    reserve_in, reserve_out = reserve_in + paid, reserve_out - out
    return (reserve_in, reserve_out) if zero_in else (reserve_out, reserve_in)


def _with_reserves(state: PoolState, reserve0: int, reserve1: int) -> PoolState:
    """``state.model_copy(update={"reserve0": reserve0, "reserve1": reserve1})``, set as
    pydantic's copy sets it without its Python layers (~3 of ~4 us; once per plan and pool)."""
    copied = PoolState.__new__(PoolState)
    fields = state.__dict__.copy()
    fields["reserve0"], fields["reserve1"] = reserve0, reserve1
    object.__setattr__(copied, "__dict__", fields)
    object.__setattr__(copied, "__pydantic_extra__", None)
    object.__setattr__(copied, "__pydantic_fields_set__", state.__pydantic_fields_set__ | _RESERVES)
    object.__setattr__(copied, "__pydantic_private__", None)
    return copied


_RESERVES: frozenset[str] = frozenset({"reserve0", "reserve1"})


def _apply_v3(state: PoolState, effect: LegEffect) -> PoolState:
    pool: ops.V3Pool = v3_pool(state)
    zero_in = zero_for_one(state, effect.token_in)
    result = (
        pool.swap_exact_in(zero_in, effect.amount)
        if effect.exact_in
        else pool.swap_exact_out(zero_in, effect.amount)
    )
    reserve0, reserve1 = virtual_reserves(result.liquidity_after, result.sqrt_price_after)
    return state.model_copy(
        update={
            "sqrt_price_x96": result.sqrt_price_after,
            "tick": result.tick_after,
            "liquidity": result.liquidity_after,
            "reserve0": reserve0,
            "reserve1": reserve1,
        }
    )


def plan_pools(plan: ExecutionPlan) -> set[PoolKey]:
    """The pools a plan trades on (its swaps: an order-book step moves no pool)."""
    return {
        (step.venue, leg.pool_id)
        for step in plan.steps
        if step.kind is StepKind.SWAP
        for leg in step.legs
    }


class PendingFlow:
    """The effects of a planner's plans that the pool states it reads do not include yet."""

    def __init__(self) -> None:
        self._steps: dict[str, _Step] = {}
        self._by_intent: dict[str, list[str]] = {}
        self._flows: dict[str, dict[str, _PoolFlow]] = {}
        """venue -> pool id -> its pending effects."""
        self._expiry: list[tuple[int, str, bool]] = []
        """(at ms, step id, only if unheard), a heap; entries of released steps are skipped."""
        self._heard: set[str] = set()
        """Intents with an effect pending and a report of their execution seen."""
        self._places: dict[str, dict[str, int]] = {}
        """venue -> pool id -> its place in the venue's list as last indexed."""
        self._touched: set[PoolKey] = set()
        """Pools given an effect since the last ``adjusted`` (``adjusted_touched``)."""
        self._released = False
        """An effect was released since the last ``adjusted`` (``adjusted_touched`` cannot
        tell which pools it leaves)."""

    def __len__(self) -> int:
        """Steps pending (including those filled whose version no state has reached)."""
        return len(self._steps)

    def pending(self, venue: str, pool_id: str) -> int:
        """How many effects are pending on a pool."""
        flow = self._flows.get(venue, {}).get(pool_id)
        return 0 if flow is None else len(flow.effects)

    def carries(self, pools: Iterable[PoolKey]) -> bool:
        """Whether any of ``pools`` has an effect pending."""
        return any(pool_id in self._flows.get(venue, {}) for venue, pool_id in pools)

    # -------------------------------------------------------------------------- changes

    def observe(self, event: Event) -> None:
        """Take an execution report of ``sep.executions`` (off Kafka, or fed back in memory
        by a fused executor); any other event is ignored."""
        topic = event.topic
        if topic == "exec.step_filled":
            filled = event.payload_as(ExecStepFilled)
            report = Report(topic, event.correlation_id, filled.step_id, filled.landed_at)
        elif topic == "exec.step_failed":
            step_id = event.payload_as(ExecStepFailed).step_id
            report = Report(topic, event.correlation_id, step_id)
        else:
            report = Report(topic, event.correlation_id)
        self.observe_report(report)

    def observe_report(self, report: Report) -> None:
        """``observe`` for a report read off its bytes (``report_digest.read_report``), or
        made of an event by ``observe``."""
        topic, intent_id = report.topic, report.correlation_id
        if topic in _REPORTS and intent_id in self._by_intent:
            self._heard.add(intent_id)
        if topic == "exec.step_filled" and report.step_id is not None:
            self.filled(report.step_id, report.landed_at)
        elif topic == "exec.step_failed" and report.step_id is not None:
            self.failed(report.step_id)
        elif topic in _ENDINGS:
            self.ended(intent_id)

    def add(
        self, intent_id: str, plan: ExecutionPlan, now_ms: int, deadline_ms: int | None
    ) -> None:
        """``plan``'s swaps become pending until their reports say they are in the pools or
        failed (or the last resorts, from ``now_ms`` and the intent's ``deadline_ms``)."""
        hold = now_ms + _HOLD_MS
        expires = hold if deadline_ms is None else min(hold, deadline_ms + _GRACE_MS)
        unheard = now_ms + _UNHEARD_MS
        for step in plan.steps:
            if step.step_id in self._steps or step.kind is not StepKind.SWAP:
                # The same plan again (re-emitted): counted once.  An order-book child moves
                # no pool (books are not pending flow yet: README, known issues).
                continue
            exact_in = step.mode is SwapMode.EXACT_IN
            keys: list[PoolKey] = []
            venue = step.venue
            flows = self._flows.get(venue)
            if flows is None:
                flows = self._flows[venue] = {}
            for leg in step.legs:
                key = (venue, leg.pool_id)
                flow = flows.get(key[1])
                if flow is None:  # (not ``setdefault``: it would make a flow per leg)
                    flow = flows[key[1]] = _PoolFlow()
                self._touched.add(key)
                flow.add(
                    LegEffect(
                        step.step_id,
                        leg.token_in,
                        exact_in,
                        leg.amount_in if exact_in else leg.amount_out,
                    )
                )
                keys.append(key)
            self._steps[step.step_id] = _Step(intent_id, keys)
            self._by_intent.setdefault(intent_id, []).append(step.step_id)
            heapq.heappush(self._expiry, (expires, step.step_id, False))
            if unheard < expires:
                heapq.heappush(self._expiry, (unheard, step.step_id, True))

    def filled(self, step_id: str, landed_at: int | None) -> None:
        """The step's trade landed at ``landed_at``; ``None`` (the venue cannot say): the
        states read from now on are taken to include it."""
        step = self._steps.get(step_id)
        if step is None:
            return
        if landed_at is None:
            self._release(step_id)
            return
        step.landed_at = landed_at
        for venue, pool_id in step.pools:
            self._flows[venue][pool_id].landed.add(step_id)

    def failed(self, step_id: str) -> None:
        """The step did not trade (refused, reverted, expired): it moved no pool."""
        self._release(step_id)

    def ended(self, intent_id: str) -> None:
        """The intent's execution is over: a step not reported filled by now never will be."""
        for step_id in list(self._by_intent.get(intent_id, ())):
            step = self._steps.get(step_id)
            if step is not None and step.landed_at is None:
                self._release(step_id)

    def _release(self, step_id: str) -> None:
        step = self._steps.pop(step_id, None)
        if step is None:
            return
        self._released = True
        for venue, pool_id in step.pools:
            flows = self._flows[venue]
            flow = flows[pool_id]
            del flow.effects[step_id]
            flow.landed.discard(step_id)
            flow.base = None  # an effect left the middle of the list: rebuild from the state
            if not flow.effects:
                del flows[pool_id]
            if not flows:
                del self._flows[venue]
        siblings = self._by_intent.get(step.intent_id, [])
        if step_id in siblings:
            siblings.remove(step_id)
        if not siblings:
            self._by_intent.pop(step.intent_id, None)
            self._heard.discard(step.intent_id)

    # -------------------------------------------------------------------------- the view

    def adjusted(
        self, pools: Mapping[str, Sequence[PoolState]], now_ms: int
    ) -> dict[str, dict[str, PoolState]]:
        """The pools with effects pending, by venue and pool id: their state in ``pools`` (as
        read) with those effects applied.  The planner routes on ``pools`` with these in
        their place (``VenueGraphs.sync(pools, adjusted)``).

        An adjusted state is the same object from call to call while neither its pool's state
        nor its effects changed, so the route graphs skip it; only pools with effects are
        looked at, whatever the number of pools.
        """
        self._expire(now_ms)
        self._touched.clear()
        self._released = False
        out: dict[str, dict[str, PoolState]] = {}
        for venue, flows in list(self._flows.items()):
            states = pools.get(venue)
            if not states:
                continue
            mine = out[venue] = {}
            # Per batch this runs over every pool with effects (hundreds at 1,000 plans/s
            # in flight for 200 ms): the common case, nothing new on a pool, is kept to an
            # identity check of its state at the place it had.
            for pool_id, flow in list(flows.items()):
                adjusted = self._adjusted_flow(venue, states, flows, pool_id, flow)
                if adjusted is not None:
                    mine[pool_id] = adjusted
        # The loop may release landed effects (harmless: the states returned have it right).
        self._released = False
        return out

    def adjusted_touched(
        self, pools: Mapping[str, Sequence[PoolState]], now_ms: int
    ) -> dict[str, dict[str, PoolState]] | None:
        """What ``adjusted(pools, now_ms)`` would give anew since the last call of either,
        when ``pools`` and ``now_ms`` are those of the last ``adjusted``: the pools given
        effects since (``add``), in the same form.  ``None`` when more may have changed (an
        effect released, or an expiry due): call ``adjusted``.

        For planning a batch in order (``plan_in_order``): each plan adds effects on its own
        few pools, and bringing the graphs to them should not cost a pass over every pool
        with effects pending (``VenueGraphs.put_instead`` takes the result).
        """
        if self._released or (self._expiry and self._expiry[0][0] <= now_ms):
            return None
        out: dict[str, dict[str, PoolState]] = {}
        for venue, pool_id in self._touched:
            flows = self._flows.get(venue)
            flow = flows.get(pool_id) if flows is not None else None
            states = pools.get(venue)
            if flows is None or flow is None or not states:
                continue
            adjusted = self._adjusted_flow(venue, states, flows, pool_id, flow)
            if adjusted is not None:
                out.setdefault(venue, {})[pool_id] = adjusted
        self._touched.clear()
        if self._released:  # a landed effect released on the way: not only these changed
            return None
        return out

    def _adjusted_flow(
        self,
        venue: str,
        states: Sequence[PoolState],
        flows: dict[str, _PoolFlow],
        pool_id: str,
        flow: _PoolFlow,
    ) -> PoolState | None:
        """One pool's state with its effects (``None``: not read this time, or every effect
        released as the state has them)."""
        place = flow.place
        if place >= len(states) or (base := states[place]).pool_id != pool_id:
            found = self._place(venue, states, pool_id)
            if found is None:
                return None  # not read this time: its effects wait (or expire)
            flow.place, base = found, states[found]
        if flow.landed:
            self._release_reached(flow, base)
            if pool_id not in flows:
                return None
        adjusted = flow.adjusted
        if base is not flow.base or adjusted is None or flow.fresh:
            adjusted = flow.view_of(base)
        return adjusted

    def _expire(self, now_ms: int) -> None:
        dropped = {True: 0, False: 0}
        while self._expiry and self._expiry[0][0] <= now_ms:
            _, step_id, if_unheard = heapq.heappop(self._expiry)
            step = self._steps.get(step_id)
            if step is not None and not (if_unheard and step.intent_id in self._heard):
                self._release(step_id)
                dropped[if_unheard] += 1
        if dropped[True] or dropped[False]:
            # Plans executed here are reported within seconds: many of these mean their
            # reports go to another worker (sep.executions not co-partitioned with the
            # intents), or a rebalance moved them; the view then misses or keeps flow.
            log.warning(
                "pending plans dropped without their reports",
                extra={
                    "never_heard_of": dropped[True],
                    "past_their_last_report": dropped[False],
                    "still_pending": len(self._steps),
                },
            )

    def _release_reached(self, flow: _PoolFlow, base: PoolState) -> None:
        """Release the filled steps ``base`` includes (every one if it has no version)."""
        version = base.version
        for step_id in list(flow.landed):
            landed_at = self._steps[step_id].landed_at
            if version is None or landed_at is None or version >= landed_at:
                self._release(step_id)

    def _place(self, venue: str, states: Sequence[PoolState], pool_id: str) -> int | None:
        """Where ``pool_id`` is in ``states``.  The places found in the venue's last list are
        tried first and checked: the market feed hands out a new list whenever a state
        changes, but keeps every pool at its place (re-indexing 10,000 pools per batch would
        cost half a millisecond)."""
        known = self._places.get(venue)
        if known is not None:
            place = known.get(pool_id)
            if place is not None and place < len(states) and states[place].pool_id == pool_id:
                return place
        places = {state.pool_id: i for i, state in enumerate(states)}
        self._places[venue] = places
        return places.get(pool_id)


J = TypeVar("J")


@dataclass
class RouteStats:
    """How often a batch's side-by-side answers had to be routed again, in order.

    Routing side by side pays when most intents of a batch trade on different pools (10,000
    pools); when most cross a pool an earlier plan of the batch trades on (a few busy pools,
    as in the sim benchmark), each is routed twice, and routing in order from the start does
    half the work.  Every ``PROBE_EVERY``-th batch is routed side by side again, to notice
    when that changes.
    """

    PROBE_EVERY = 16
    routed: int = 0
    rerouted: int = 0
    batches: int = 0

    def side_by_side(self) -> bool:
        self.batches += 1
        if self.routed < 20 or self.batches % self.PROBE_EVERY == 0:
            return True
        return self.rerouted * 2 < self.routed

    def count(self, routed: int, rerouted: int) -> None:
        if self.routed > 1_000:  # recent batches weigh most
            self.routed, self.rerouted = self.routed // 2, self.rerouted // 2
        self.routed += routed
        self.rerouted += rerouted


def plan_in_order(
    jobs: Sequence[J],
    route: Callable[[J], PlanCreated | PlanRejected],
    refresh: Callable[[], object],
    pending: PendingFlow,
    now_ms: int,
    threads: BatchThreads,
    stats: RouteStats | None = None,
) -> list[PlanCreated | PlanRejected]:
    """Plan a batch so that each plan accounts for the plans before it; each becomes pending.

    ``route`` answers one job on the route graphs as they are; ``refresh`` brings the graphs
    to the pending flow (``VenueGraphs.sync(pools, pending.adjusted(pools, now))``, done
    already for the batch's start).  Side by side (``stats`` says whether that pays): the
    jobs are routed on ``threads`` on the view the batch found, and a job whose route crosses
    a pool an earlier plan of the batch trades on is routed again, in order, on the view with
    those plans (at 10,000 pools most routes cross none and keep the parallel answer; on a
    few busy pools most are routed twice).  In order: each job is routed once, on the view
    with every plan before it.
    """
    if stats is None or stats.side_by_side():
        # The graphs must not change while threads route on them: ``list`` waits for them all.
        first: list[PlanCreated | PlanRejected | None] = list(threads.map(route, jobs))
    else:
        first = [None] * len(jobs)
    planned: list[PlanCreated | PlanRejected] = []
    traded: set[PoolKey] = set()  # pools this batch's plans trade on so far
    stale = False  # plans were added since the graphs were last brought to the pending flow
    rerouted = 0
    for job, result in zip(jobs, first, strict=True):
        crossed: set[PoolKey] | None = None
        if isinstance(result, PlanCreated):
            crossed = plan_pools(result.plan)
        if result is None or (crossed is not None and crossed & traded):
            if stale:
                refresh()
                stale = False
            rerouted += result is not None
            result = route(job)
            crossed = None
        if isinstance(result, PlanCreated):
            intent = result.intent
            pending.add(intent.id, result.plan, now_ms, intent.deadline_ms)
            traded |= plan_pools(result.plan) if crossed is None else crossed
            stale = True
        planned.append(result)
    if stats is not None and first and first[0] is not None:
        stats.count(len(jobs), rerouted)
    return planned
