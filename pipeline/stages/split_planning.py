"""One route over pools and books: split an intent between a venue's pools and the order books
of its pair when that beats every single venue after fees and gas.

Shapes, for a buy (ACQUIRE ``q`` base units of the book's base asset; a sell mirrors it with
bids and proceeds, ``best_route`` for ``best_route_exact_out``):

    pool curve   per pool venue the intent may use, its best route for x = q*k/N
                 (k = 1..N, N = ``CURVE_POINTS``) from the Rust router
                 (``RouteGraph.best_route_exact_out``): c(x), quote base units paid, pool fees
                 in, increasing and convex (price impact)
    water-fill   ``ops.water_fill`` (Rust; the twin gives the same): segment k's marginal
                 price (c(x_k) - c(x_k-1)) / (x_k - x_k-1) in the book's all-in price units,
                 rounded against the taker and made monotone, as the pool's levels; the q
                 cheapest units across the allowed venues' all-in book levels and the pool's,
                 i.e. every venue filled up to one common marginal price
    exact        the pools' share x = what the sweep took of ``POOLS``; the books take q - x
                 in whole lots (``book_planning.allocate``; a lot remainder goes back to the
                 pools); the pool route is quoted exactly for x, and its gas is charged
                 (``Routing.pays_gas``: the water-fill ranks by marginal price, gas is a fixed
                 cost per route, so it is weighed here)
    choose       pools only, books only, or the split: whichever pays least (buy) or
                 receives most (sell) after fees and gas, each valued from its steps' own
                 amounts; a split is kept only when strictly better than both, so it is never
                 worse than the best single venue
    steps        the pool route's swap steps (``pool_steps.pool_step``), then one ORDER step
                 per book venue (``book_planning.book_steps``): parallel parts of one trade

Why a sampled curve: the router already gives the exact pool cost for any amount (V3 tick
crossing included, the venue's own splits and hops), so the curve needs no pool math of its
own; the split point is then quoted exactly, so the sampling only decides where to split,
never a price.  Cost: ``CURVE_POINTS`` route queries per pool venue, only for intents whose
pair has books.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction

from pipeline import ops
from pipeline.ids import deterministic_ulid
from pipeline.market.board import AggregatedBook
from pipeline.models.events import PlanCreated, PlanRejected
from pipeline.models.intent import Intent, IntentType
from pipeline.models.plan import ExecutionPlan
from pipeline.plugins.venue import Routing
from pipeline.stages.book_planning import (
    Child,
    _lot_units,
    allocate,
    best_price,
    book_quantity,
    book_steps,
    plan_on_books,
)
from pipeline.stages.pool_steps import (
    MAX_HOPS,
    PPM,
    gas_price_units,
    pool_step,
    route_fees,
)
from pipeline.topology.models import Topology

CURVE_POINTS = 16
"""Points sampled on a pool venue's cost curve (route queries per venue and intent)."""
POOLS = "~pools"
"""The key of the pool venue's share in ``water_fill``'s answer (``~`` is in no plugin name)."""


@dataclass(frozen=True)
class PoolRoute:
    """A pool venue's route and what its gas costs in the counter asset's base units."""

    venue: str
    route: ops.GraphRoute
    gas_cost: int


def water_fill(
    book: AggregatedBook,
    side: str,
    qty: int,
    points: list[tuple[int, int]],
    quote_decimals: int,
    venues: Collection[str] | None = None,
) -> dict[str, int] | None:
    """Per venue (``POOLS`` for the pool curve), its share of ``qty`` when the cheapest units
    by marginal price are taken across ``venues``' books and the pool curve ``points``
    (``(x, c(x))`` in base units of the base and quote assets); ``None`` when together they
    hold less than ``qty``.  ``ops.water_fill`` on ``book.ops`` (Rust, or the twin)."""
    merged = consolidated(book, venues)
    scale = price_scale(book, quote_decimals)
    done = book.ops.water_fill(merged, side, qty, points, scale.numerator, scale.denominator)
    if done.filled_qty < qty:
        return None
    shares = dict(done.venue_fills)
    if done.pool_qty:
        shares[POOLS] = done.pool_qty
    return shares


def consolidated(book: AggregatedBook, venues: Collection[str] | None) -> object:
    """The consolidated book of ``venues`` (default: all the pair's), merged again only for
    a subset."""
    names = sorted(book.venues if venues is None else set(venues) & set(book.venues))
    if len(names) == len(book.venues):
        return book.book
    return book.ops.aggregate_books([book.venues[v].book for v in names])


def price_scale(book: AggregatedBook, quote_decimals: int) -> Fraction:
    """Quote base units per base unit -> the book's price units."""
    return Fraction(10) ** (book.size_decimals - quote_decimals) / Fraction(book.price_unit)


def _curve(quote: Callable[[int], int | None], qty: int) -> list[tuple[int, int]]:
    points: list[tuple[int, int]] = []
    for k in range(1, CURVE_POINTS + 1):
        x = qty * k // CURVE_POINTS
        if x == 0 or (points and points[-1][0] == x):
            continue
        c = quote(x)
        if c is None:
            break  # the pools hold no more than this
        points.append((x, c))
    return points


@dataclass(frozen=True)
class _Split:
    pool: PoolRoute
    children: list[Child]


class SplitPlanner:
    """The three candidates for one intent on one pair's books and the venues' pools."""

    def __init__(
        self,
        intent: Intent,
        book: AggregatedBook,
        graphs: Mapping[str, ops.RouteGraph],
        topology: Topology,
        routing: Mapping[str, Routing],
    ) -> None:
        self.intent, self.book, self.graphs = intent, book, graphs
        self.routing = routing
        self.buy = intent.type is IntentType.ACQUIRE
        self.side = "buy" if self.buy else "sell"
        self.subject, self.counter = intent.subject.asset, intent.counter.asset
        self.allowed = intent.constraints.allowed_venues
        self._gas_price = gas_price_units(self.counter.symbol, topology)
        # An all-in notional (price units x base units) -> quote base units.
        self._notional_scale = Fraction(book.price_unit) * Fraction(10) ** (
            self.counter.decimals - book.size_decimals
        )

    def gas_price(self, venue: str) -> int | None:
        return self._gas_price if self.routing.get(venue, Routing()).pays_gas else None

    def route(self, venue: str, amount: int) -> PoolRoute | None:
        """The venue's best route for ``amount`` base units of the subject, gas priced."""
        graph, how = self.graphs[venue], self.routing.get(venue, Routing())
        gas = self.gas_price(venue)
        s, c = self.subject.symbol, self.counter.symbol
        try:
            if self.buy:
                route = graph.best_route_exact_out(c, s, amount, MAX_HOPS, how.max_splits, gas)
            else:
                route = graph.best_route(s, c, amount, MAX_HOPS, how.max_splits, gas)
        except ops.RustOpsError:
            return None
        return None if route is None else PoolRoute(venue, route, (gas or 0) * route.gas)

    def value(self, plan: ExecutionPlan, gas_cost: int) -> Fraction:
        """What a plan is worth to the taker in counter base units, to maximise: what it
        receives (sell) or minus what it pays (buy), less gas, from its steps' amounts."""
        counter = self.counter
        if self.buy:
            paid = sum(counter.to_base_units(s.amount_in) for s in plan.steps)
            return -Fraction(paid + gas_cost)
        got = sum(counter.to_base_units(s.amount_out) for s in plan.steps)
        return Fraction(got - gas_cost)

    def _children(self, qty: int, pools: int) -> tuple[int, list[Child]] | None:
        """The books' part of a split whose water-fill gave the pools ``pools``: ``(pool
        share, children)`` with the books' share in whole lots (a lot remainder to the pools)."""
        books = qty - pools
        if books == 0:
            return pools, []
        children = allocate(self.book, self.side, books, self.allowed)
        if children is None:
            names = [v for v in self.book.venues if self.allowed is None or v in self.allowed]
            if not names:
                return None
            lot = max(_lot_units(self.book, v) for v in names)
            books -= books % lot
            if books == 0:
                return qty, []
            children = allocate(self.book, self.side, books, self.allowed)
            if children is None:
                return None
        return qty - books, children

    def split(self, qty: int) -> _Split | None:
        """The best water-filled split over any one allowed pool venue and the books."""
        best: tuple[Fraction, _Split] | None = None
        for venue in sorted(self.graphs):
            if self.allowed is not None and venue not in self.allowed:
                continue

            known: dict[int, int | None] = {}

            def quote(
                x: int, venue: str = venue, known: dict[int, int | None] = known
            ) -> int | None:
                if x not in known:
                    found = self.route(venue, x)
                    known[x] = (
                        None
                        if found is None
                        else (found.route.amount_in if self.buy else found.route.amount_out)
                    )
                return known[x]

            if not self._may_split(qty, quote):
                continue
            points = _curve(quote, qty)
            if not points:
                continue
            shares = water_fill(
                self.book, self.side, qty, points, self.counter.decimals, self.allowed
            )
            if shares is None or not shares.get(POOLS) or shares.get(POOLS) == qty:
                continue  # one side alone: the single-venue candidates cover it
            parts = self._children(qty, shares[POOLS])
            if parts is None or not parts[1] or parts[0] == 0:
                continue
            pooled = self.route(venue, parts[0])
            if pooled is None:
                continue
            candidate = _Split(pooled, parts[1])
            worth = self._worth(candidate)
            if best is None or worth > best[0]:
                best = (worth, candidate)
        return None if best is None else best[1]

    def _may_split(self, qty: int, quote: Callable[[int], int | None]) -> bool:
        """Whether a split of ``qty`` can beat both sides alone, from three pool quotes
        rather than a whole curve: the pools must be better than the books' last unit at
        their first segment, and the books' best better than the pools' last segment.

        Only a shortcut (the single-venue plans are always weighed): it is skipped, and the
        curve sampled, when either side alone cannot carry ``qty``."""
        step = qty // CURVE_POINTS
        swept = self.book.ops.sweep(consolidated(self.book, self.allowed), self.side, qty)
        top = best_price(self.book, self.side, self.allowed)
        if step == 0 or swept.filled_qty < qty or top is None:
            return True
        first, whole, before = quote(step), quote(qty), quote(qty - step)
        if first is None:
            return False  # the pools cannot take even the first segment
        if whole is None or before is None:
            return True
        scale = price_scale(self.book, self.counter.decimals)
        opening = Fraction(first, step) * scale
        closing = Fraction(whole - before, step) * scale
        worst = swept.worst_price
        if self.buy:
            return opening < worst and top < closing
        return opening > worst and top > closing

    def _worth(self, split: _Split) -> Fraction:
        """A split's value as ``value`` would give it, without building its steps."""
        books = sum(c.all_in for c in split.children) * self._notional_scale
        route, gas = split.pool.route, split.pool.gas_cost
        if self.buy:
            return -(route.amount_in + gas + books)
        return route.amount_out + books - gas

    def plan(self, split: _Split, priority: int, qty: int) -> PlanCreated | PlanRejected:
        """The split as a plan: pool swap steps, then the books' ORDER steps."""
        intent, book = self.intent, self.book
        subject, counter = self.subject, self.counter
        asset_in, asset_out = (counter, subject) if self.buy else (subject, counter)
        route = split.pool.route
        plan_id = "plan-" + deterministic_ulid(intent.created_at_ms or 0, intent.id, "plan")
        steps = [
            pool_step(f"{plan_id}-{k + 1}", split.pool.venue, path, intent, asset_in, asset_out)
            for k, path in enumerate(route.paths)
        ]
        orders, book_fees = book_steps(intent, book, split.children, plan_id, len(steps) + 1)
        steps += orders
        # Impact: the average price against the best price before the trade, the better of
        # the books' best (all-in) and the pool route's mid price (fee-free), per base unit.
        units = Fraction(book.price_unit) * Fraction(10) ** (counter.decimals - book.size_decimals)
        refs = []
        top = best_price(book, self.side, self.allowed)
        if top is not None:
            refs.append(top * units)
        mid = Fraction(route.mid_price_num, route.mid_price_den)
        if mid > 0:
            refs.append(1 / mid if self.buy else mid)
        ref = min(refs) if self.buy else max(refs)
        if self.buy:
            total = sum(counter.to_base_units(s.amount_in) for s in steps)
        else:
            total = sum(counter.to_base_units(s.amount_out) for s in steps)
        average = Fraction(total, qty)
        worse = max((average - ref) / ref if self.buy else (ref - average) / ref, Fraction(0))
        impact = (Decimal(worse.numerator) / Decimal(worse.denominator)).quantize(
            Decimal(1) / PPM, ROUND_CEILING
        )
        slippage = intent.constraints.max_slippage
        if impact > slippage:
            return PlanRejected(
                reason="price_impact",
                detail=f"price impact {impact:.6f} is above max slippage {slippage:f}",
            )
        book_qty = sum(c.qty for c in split.children)
        if self.buy:
            cost = route_fees(route, counter) + book_fees
        else:
            proceeds = sum((s.amount_out for s in orders), Decimal(0))
            cost = route_fees(route, subject) + (
                book_fees * subject.from_base_units(book_qty) / proceeds if proceeds else 0
            )
        estimated_out = subject.from_base_units(qty) if self.buy else counter.from_base_units(total)
        plan = ExecutionPlan(
            id=plan_id,
            intent_id=intent.id,
            steps=tuple(steps),
            estimated_out=estimated_out,
            estimated_cost=cost.quantize(
                Decimal(1).scaleb(-asset_in.decimals), ROUND_CEILING if self.buy else ROUND_FLOOR
            ),
            estimated_duration_ms=0,
            risk_score=min(100, int(impact / slippage * 100)) if slippage > 0 else 100,
            price_impact=impact,
        )
        return PlanCreated(plan=plan, intent=intent, priority=priority)


def plan_on_pools_and_books(
    intent: Intent,
    priority: int,
    pools_result: PlanCreated | PlanRejected,
    pooled: PoolRoute | None,
    book: AggregatedBook,
    graphs: Mapping[str, ops.RouteGraph],
    topology: Topology,
    routing: Mapping[str, Routing],
) -> PlanCreated | PlanRejected:
    """The best of the pools-only plan (``pools_result``, made on ``pooled``), the books-only
    plan and the split, after fees and gas (see the module docstring).  With none of them
    possible: the pools' refusal, or the books' when the pools had no route at all."""
    allowed = intent.constraints.allowed_venues
    if allowed is not None and not set(allowed) & set(book.venues):
        return pools_result  # no book venue the intent may use
    qty = book_quantity(intent, book)
    if isinstance(qty, PlanRejected):
        if isinstance(pools_result, PlanRejected) and pools_result.reason == "no_route":
            return qty
        return pools_result
    planner = SplitPlanner(intent, book, graphs, topology, routing)
    options: list[tuple[Fraction, PlanCreated]] = []
    if isinstance(pools_result, PlanCreated) and pooled is not None:
        options.append((planner.value(pools_result.plan, pooled.gas_cost), pools_result))
    books_result = plan_on_books(intent, priority, book)
    if isinstance(books_result, PlanCreated):
        options.append((planner.value(books_result.plan, 0), books_result))
    split = planner.split(qty)
    if split is not None:
        planned = planner.plan(split, priority, qty)
        if isinstance(planned, PlanCreated):
            worth = planner.value(planned.plan, split.pool.gas_cost)
            if not options or worth > max(v for v, _ in options):
                return planned
    if options:
        # Ties go to the first: pools before books (one swap rather than child orders).
        return max(options, key=lambda o: o[0])[1]
    if isinstance(pools_result, PlanRejected) and pools_result.reason == "no_route":
        return books_result
    return pools_result
