"""Plan an intent on book venues: sweep the pair's aggregated book into child orders per venue.

Pure: an intent and an ``AggregatedBook`` (``pipeline.market.board``) in, a plan or a refusal
out.  Shapes:

    intent   ACQUIRE q base with quote  -> buy q   (sweep the asks)
             DISPOSE q base for quote   -> sell q  (sweep the bids)
    sweep    ops.sweep(all-in book, side, q): fills (price, qty, venue), best all-in first
    lots     each venue's take rounded to its lot; a remainder goes to another venue whose
             lot divides it, at that venue's next levels (else the merged plan is infeasible)
    choose   the cheaper of the merged allocation and every single venue that can fill q
             alone (so a plan is never worse than the best single book, by construction)
    steps    one ExecutionStep (kind ORDER, one leg: pool_id = the venue's market id) per
             venue, in parallel: buys EXACT_OUT (max_in = cost * (1 + max_slippage)), sells
             EXACT_IN (min_out = proceeds * (1 - max_slippage)), and ``limit_price`` the
             worst of the venue's own prices the child takes; the venue places an IOC
             limit there with the total bounded by max_in / min_out on average
             (``plugins.clob_venue.orders``)

The book's prices are all-in (each venue's taker fee folded in), so comparing allocations by
their all-in notional compares them after fees.  Amounts in the quote asset are rounded
against the taker (costs up, proceeds down) to the asset's decimals.

Only amounts in the base asset are planned here (``book_amount_in_quote`` otherwise): a
sweep takes a base quantity.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from pipeline.ids import deterministic_ulid
from pipeline.market.board import AggregatedBook
from pipeline.models.assets import Asset
from pipeline.models.events import PlanCreated, PlanRejected
from pipeline.models.intent import Intent, IntentType
from pipeline.models.plan import ExecutionPlan, ExecutionStep, RouteLeg, StepKind, SwapMode


@dataclass(frozen=True)
class Child:
    """One venue's part: ``qty`` base units; ``all_in`` the notional with fees (price units x
    base units); ``raw`` the quote paid or received before fees (human)."""

    venue: str
    qty: int
    all_in: int
    raw: Decimal
    worst: Decimal
    """The venue's own price (on its tick grid, before its fee) of the last level taken."""


def _lot_units(book: AggregatedBook, venue: str) -> int:
    return int(book.venues[venue].market.lot_size.scaleb(book.size_decimals))


def _children(book: AggregatedBook, side: str, alloc: Mapping[str, int]) -> list[Child] | None:
    out = []
    for venue, qty in sorted(alloc.items()):
        if qty == 0:
            continue
        taken = _take(book, venue, side, qty)
        if taken is None:
            return None
        out.append(Child(venue, qty, *taken))
    return out


def _take(
    book: AggregatedBook, venue: str, side: str, qty: int
) -> tuple[int, Decimal, Decimal] | None:
    """The cheapest ``qty`` base units of one venue: ``(all-in notional, raw quote, worst raw
    price taken)``; ``None`` if the venue has less."""
    vb = book.venues[venue]
    levels = vb.book.asks if side == "buy" else vb.book.bids
    raws = vb.raw_asks if side == "buy" else vb.raw_bids
    left, all_in, raw, worst = qty, 0, Decimal(0), Decimal(0)
    for price, size in levels:
        if left == 0:
            break
        n = min(size, left)
        left -= n
        all_in += price * n
        raw += raws[price] * n
        worst = raws[price]
    return None if left else (all_in, raw.scaleb(-book.size_decimals), worst)


def _extra(book: AggregatedBook, side: str, held: int, more: int, venue: str) -> int:
    """The all-in notional of ``more`` units of ``venue`` after the ``held`` it already has."""
    after = _take(book, venue, side, held + more)
    before = _take(book, venue, side, held) if held else (0, Decimal(0), Decimal(0))
    if after is None or before is None:
        raise ValueError(f"{venue} has less than {held + more} units")
    return after[0] - before[0]


def merged_allocation(
    book: AggregatedBook, consolidated: object, side: str, qty: int
) -> dict[str, int] | None:
    """Per venue, how much of ``qty`` the sweep of ``consolidated`` takes, each venue's take
    made a multiple of its lot (see the module docstring); ``None``: not feasible."""
    swept = book.ops.sweep(consolidated, side, qty)
    if swept.filled_qty < qty:
        return None
    alloc = {venue: q for venue, q, _n, _f in swept.venue_fills}
    for venue in list(alloc):
        lot = _lot_units(book, venue)
        rest = alloc[venue] % lot
        if rest == 0:
            continue
        alloc[venue] -= rest
        takers = [
            v
            for v in sorted(book.venues)
            if v != venue
            and rest % _lot_units(book, v) == 0
            and _take(book, v, side, alloc.get(v, 0) + rest) is not None
        ]
        if not takers:
            return None

        # The venue whose next units cost least (buy) or pay most (sell) after fees.
        extras = {v: _extra(book, side, alloc.get(v, 0), rest, v) for v in takers}
        best = (min if side == "buy" else max)(takers, key=extras.__getitem__)
        alloc[best] = alloc.get(best, 0) + rest
    return {v: q for v, q in alloc.items() if q}


def allocate(
    book: AggregatedBook, side: str, qty: int, venues: Collection[str] | None = None
) -> list[Child] | None:
    """The best allocation of ``qty`` over ``venues`` (default: all the book has): the merged
    sweep or a single venue, whichever is cheaper after fees; ``None``: none can fill it."""
    names = sorted(book.venues if venues is None else set(venues) & set(book.venues))
    if not names:
        return None
    consolidated = (
        book.book
        if len(names) == len(book.venues)
        else book.ops.aggregate_books([book.venues[v].book for v in names])
    )
    candidates: list[list[Child]] = []
    merged = merged_allocation(book, consolidated, side, qty)
    if merged is not None and set(merged) <= set(names):
        children = _children(book, side, merged)
        if children is not None:
            candidates.append(children)
    for venue in names:
        if qty % _lot_units(book, venue) == 0:
            alone = _children(book, side, {venue: qty})
            if alone is not None:
                candidates.append(alone)
    if not candidates:
        return None

    def total(children: list[Child]) -> int:
        return sum(c.all_in for c in children)

    return (min if side == "buy" else max)(candidates, key=total)


def quote_amount(book: AggregatedBook, all_in: int, quote: Asset, buy: bool) -> Decimal:
    """An all-in notional (price units x base units) in the quote asset, rounded against the
    taker to the asset's decimals (a cost up, proceeds down)."""
    value = Decimal(all_in) * book.price_unit
    value = value.scaleb(-book.size_decimals)
    step = Decimal(1).scaleb(-quote.decimals)
    return value.quantize(step, ROUND_CEILING if buy else ROUND_FLOOR)


def book_quantity(intent: Intent, book: AggregatedBook) -> int | PlanRejected:
    """The base units the intent trades on ``book``, or why it cannot be planned there."""
    subject = intent.subject.asset
    if (subject.symbol, intent.counter.asset.symbol) != (book.base, book.quote):
        return PlanRejected(
            reason="book_amount_in_quote",
            detail=(
                f"books trade {book.base} for {book.quote}; an intent on books needs its "
                f"amount in {book.base}, this one has it in {subject.symbol}"
            ),
        )
    qty = subject.to_base_units(intent.subject.amount or Decimal(0))
    if qty <= 0:
        return PlanRejected(
            reason="unroutable_amount",
            detail=f"{intent.subject.amount} {subject.symbol} is 0 base units",
        )
    return qty


def book_steps(
    intent: Intent, book: AggregatedBook, children: list[Child], plan_id: str, first: int = 1
) -> tuple[list[ExecutionStep], Decimal]:
    """One ORDER step per child (ids ``<plan_id>-<first>``, ...), and the venues' fees in the
    quote asset.

    Each step's ``limit_price`` is the worst of the venue's own prices the child takes (the
    IOC limit: the book as planned fills the child whole), while ``max_in`` / ``min_out``
    bound its total from the average, widened by the intent's slippage.
    """
    subject, counter = intent.subject.asset, intent.counter.asset
    buy = intent.type is IntentType.ACQUIRE
    slippage = intent.constraints.max_slippage
    quantum = Decimal(1).scaleb(-counter.decimals)
    steps = []
    fees = Decimal(0)
    for k, child in enumerate(children):
        amount = subject.from_base_units(child.qty)
        money = quote_amount(book, child.all_in, counter, buy)
        fees += (money - child.raw) if buy else (child.raw - money)
        venue = book.venues[child.venue].market
        step_id = f"{plan_id}-{first + k}"
        if buy:
            bound = (money * (1 + slippage)).quantize(quantum, ROUND_CEILING)
            leg = RouteLeg(
                pool_id=venue.market_id,
                venue=child.venue,
                token_in=counter.symbol,
                token_out=subject.symbol,
                amount_in=counter.to_base_units(money),
                amount_out=child.qty,
            )
            step = ExecutionStep(
                step_id=step_id,
                kind=StepKind.ORDER,
                venue=child.venue,
                mode=SwapMode.EXACT_OUT,
                legs=(leg,),
                asset_in=counter.symbol,
                asset_out=subject.symbol,
                amount_in=money,
                min_out=amount,
                amount_out=amount,
                max_in=bound,
                limit_price=child.worst,
            )
        else:
            floor = (money * (1 - slippage)).quantize(quantum, ROUND_FLOOR)
            leg = RouteLeg(
                pool_id=venue.market_id,
                venue=child.venue,
                token_in=subject.symbol,
                token_out=counter.symbol,
                amount_in=child.qty,
                amount_out=counter.to_base_units(money),
            )
            step = ExecutionStep(
                step_id=step_id,
                kind=StepKind.ORDER,
                venue=child.venue,
                mode=SwapMode.EXACT_IN,
                legs=(leg,),
                asset_in=subject.symbol,
                asset_out=counter.symbol,
                amount_in=amount,
                min_out=floor,
                amount_out=money,
                max_in=amount,
                limit_price=child.worst,
            )
        steps.append(step)
    return steps, fees


def best_price(book: AggregatedBook, side: str, venues: Collection[str] | None) -> int | None:
    """The best all-in price of ``side`` (``buy``: the lowest ask) among ``venues``."""
    names = set(book.venues) if venues is None else set(venues) & set(book.venues)
    tops: list[int] = [
        levels[0][0]
        for v in names
        if (levels := (book.venues[v].book.asks if side == "buy" else book.venues[v].book.bids))
    ]
    if not tops:
        return None
    return min(tops) if side == "buy" else max(tops)


def plan_on_books(
    intent: Intent, priority: int, book: AggregatedBook
) -> PlanCreated | PlanRejected:
    """The pure planning function (see the module docstring)."""
    qty = book_quantity(intent, book)
    if isinstance(qty, PlanRejected):
        return qty
    subject, counter = intent.subject.asset, intent.counter.asset
    buy = intent.type is IntentType.ACQUIRE
    side = "buy" if buy else "sell"
    allowed = intent.constraints.allowed_venues
    children = allocate(book, side, qty, allowed)
    if children is None:
        return PlanRejected(
            reason="no_route",
            detail=(
                f"the books of {sorted(book.venues)} cannot {side} "
                f"{intent.subject.amount} {subject.symbol} in whole lots"
            ),
        )
    best = Decimal(best_price(book, side, allowed) or 0)
    total = sum(c.all_in for c in children)
    average = Decimal(total) / qty
    impact = (average - best) / best if buy else (best - average) / best
    slippage = intent.constraints.max_slippage
    if impact > slippage:
        return PlanRejected(
            reason="price_impact",
            detail=f"price impact {impact:.6f} is above max slippage {slippage:f}",
        )
    plan_id = "plan-" + deterministic_ulid(intent.created_at_ms or 0, intent.id, "plan")
    steps, fees = book_steps(intent, book, children, plan_id)
    out_total = (
        subject.from_base_units(qty) if buy else sum((s.amount_out for s in steps), Decimal(0))
    )
    # Fees in the asset spent: quote for a buy; for a sell, converted at the average price.
    cost = fees if buy else fees * qty / (Decimal(total) * book.price_unit)
    asset_in = counter if buy else subject
    plan = ExecutionPlan(
        id=plan_id,
        intent_id=intent.id,
        steps=tuple(steps),
        estimated_out=out_total,
        estimated_cost=cost.quantize(Decimal(1).scaleb(-asset_in.decimals), ROUND_CEILING),
        estimated_duration_ms=0,
        risk_score=min(100, int(impact / slippage * 100)) if slippage > 0 else 100,
        price_impact=impact,
    )
    return PlanCreated(plan=plan, intent=intent, priority=priority)
