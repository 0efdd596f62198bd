"""A price-time-priority matching engine for one market.  Pure logic: no I/O, no clock.

Units are exact ints, fixed per market by its tick and lot sizes:

    price      a count of ticks (tick_size quote per one base), > 0
    qty        a count of lots (lot_size base), > 0
    quote      integer base units of the quote asset: notional = price * qty * unit, where
               ``unit`` (quote base units per tick per lot) is a whole number (config checks)
    fee        hundredths of a basis point of the notional (3000 = 0.30 %), rounded in the
               venue's favour: a charge rounds up, a rebate (negative maker fee) rounds down

Order types: LIMIT (GTC rests what does not match; IOC cancels it; FOK fills all or nothing)
and MARKET (no price bound; IOC or FOK).  ``post_only`` (GTC limits only) is rejected, not
repriced, if it would take liquidity.  ``quote_limit`` bounds a taker by quote instead of by
quantity alone: a buy spends at most that much (fees included), a sell stops once its
proceeds (net of fees) reach it -- how a step "spend 3,000 USDC" becomes an order.
``average_limit`` bounds the average instead (IOC/FOK only): quote base units for the whole
``qty``, fees included; whatever fills pays at most (buy) or receives at least (sell) its
share of it, ``average_limit * filled / qty``.  With a limit price at the worst level a plan
sweeps, it lets the order take every level the plan counted on while its total stays within
the plan's average-based bound, however the book has moved.

Matching is two-phase: ``_plan`` walks the opposite side best price first, oldest order first
within a price, and decides each trade without changing anything; only then does ``submit``
apply them.  So a FOK that cannot fill completely, or a post-only that would cross, leaves the
book untouched, and ``quote`` (a dry run) is the same computation as a fill.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

FEE_DENOMINATOR = 1_000_000


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    OPEN = "open"
    """Resting in the book (possibly partly filled already)."""
    FILLED = "filled"
    CANCELLED = "cancelled"
    """Final with a remainder: an IOC/market remainder, or cancelled while resting."""
    REJECTED = "rejected"
    """Refused without touching the book (``reason`` says why)."""


def fee_of(notional: int, rate: int) -> int:
    """The fee on ``notional`` at ``rate``: ceil for a charge, toward zero for a rebate."""
    return -((-notional * rate) // FEE_DENOMINATOR)


@dataclass(frozen=True)
class OrderRequest:
    side: Side
    qty: int
    price: int | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    quote_limit: int | None = None
    owner: str = ""
    average_limit: int | None = None


@dataclass
class RestingOrder:
    order_id: int
    side: Side
    price: int
    qty: int
    """As placed."""
    remaining: int
    owner: str = ""
    priority: int = 0
    """When it joined the book (the engine's counter): earlier fills first at one price."""


@dataclass(frozen=True)
class Trade:
    maker_order_id: int
    taker_order_id: int
    taker_side: Side
    price: int
    qty: int
    notional: int
    maker_fee: int
    taker_fee: int
    maker_owner: str = ""


@dataclass(frozen=True)
class OrderResult:
    order_id: int
    status: OrderStatus
    filled_qty: int = 0
    notional: int = 0
    fee: int = 0
    """The taker's fees on this order's trades, in quote base units."""
    trades: tuple[Trade, ...] = ()
    resting: RestingOrder | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass
class _Side:
    """One side's levels: ``prices`` ascending; a bid side's best is the last."""

    bids: bool
    prices: list[int] = field(default_factory=list)
    orders: dict[int, deque[RestingOrder]] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.bids else self.prices[0]

    def best_first(self) -> Iterator[int]:
        return reversed(self.prices) if self.bids else iter(self.prices)

    def add(self, order: RestingOrder) -> None:
        queue = self.orders.get(order.price)
        if queue is None:
            bisect.insort(self.prices, order.price)
            queue = self.orders[order.price] = deque()
            self.sizes[order.price] = 0
        queue.append(order)
        self.sizes[order.price] += order.remaining

    def take(self, order: RestingOrder, qty: int) -> None:
        """``qty`` of ``order`` traded (it is at the front of its level when it fills)."""
        order.remaining -= qty
        self.sizes[order.price] -= qty
        if order.remaining == 0:
            self.orders[order.price].remove(order)
            self._drop_if_empty(order.price)

    def remove(self, order: RestingOrder) -> None:
        self.orders[order.price].remove(order)
        self.sizes[order.price] -= order.remaining
        self._drop_if_empty(order.price)

    def _drop_if_empty(self, price: int) -> None:
        if not self.orders[price]:
            del self.orders[price], self.sizes[price]
            self.prices.pop(bisect.bisect_left(self.prices, price))

    def levels(self, depth: int | None) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for price in self.best_first():
            if depth is not None and len(out) >= depth:
                break
            out.append((price, self.sizes[price]))
        return out


class MatchingEngine:
    """One market's book.  ``unit``: quote base units per tick per lot (a notional's scale)."""

    def __init__(
        self,
        market_id: str,
        *,
        unit: int,
        maker_fee: int = 0,
        taker_fee: int = 0,
        next_order_id: int = 1,
    ) -> None:
        if unit < 1:
            raise ValueError(f"unit must be a positive int, got {unit}")
        if not 0 <= taker_fee < FEE_DENOMINATOR or not -taker_fee <= maker_fee < FEE_DENOMINATOR:
            raise ValueError(
                f"fees out of range: maker {maker_fee}, taker {taker_fee} "
                "(0 <= taker < 1e6, a maker rebate at most the taker fee)"
            )
        self.market_id = market_id
        self.unit = unit
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.next_order_id = next_order_id
        self._priority = 0
        self._bids = _Side(bids=True)
        self._asks = _Side(bids=False)
        self.orders: dict[int, RestingOrder] = {}
        """Resting orders by id."""

    # ------------------------------------------------------------------------- reads

    @property
    def best_bid(self) -> int | None:
        return self._bids.best()

    @property
    def best_ask(self) -> int | None:
        return self._asks.best()

    def levels(
        self, depth: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """L2: ``(bids, asks)`` as ``(price, total qty)``, best first, at most ``depth`` each."""
        return self._bids.levels(depth), self._asks.levels(depth)

    def resting(self) -> list[RestingOrder]:
        """Every resting order, in time priority."""
        return sorted(self.orders.values(), key=lambda o: o.priority)

    # ------------------------------------------------------------------------- writes

    def restore(self, orders: Iterable[RestingOrder]) -> None:
        """Put back orders that were resting (after a restart), in their priority order,
        without matching them.  Raises ``ValueError`` if they cross or repeat an id."""
        for order in sorted(orders, key=lambda o: o.priority):
            if order.order_id in self.orders or order.remaining <= 0:
                raise ValueError(f"cannot restore order {order.order_id}")
            opposite = self._asks if order.side is Side.BUY else self._bids
            best = opposite.best()
            if best is not None and (
                order.price >= best if order.side is Side.BUY else order.price <= best
            ):
                raise ValueError(f"restoring order {order.order_id} would cross the book")
            self._side(order.side).add(order)
            self.orders[order.order_id] = order
            self._priority = max(self._priority, order.priority)
            self.next_order_id = max(self.next_order_id, order.order_id + 1)

    def submit(self, request: OrderRequest, order_id: int | None = None) -> OrderResult:
        """Match ``request`` and rest what a GTC limit leaves.  ``order_id``: the caller's
        (a ledger row), else the engine's next."""
        if order_id is None:
            order_id = self.next_order_id
        self.next_order_id = max(self.next_order_id, order_id + 1)
        problem = self._invalid(request)
        if problem is not None:
            return OrderResult(
                order_id, OrderStatus.REJECTED, reason="invalid_order", detail=problem
            )
        plan = self._plan(request, order_id)
        filled = sum(t.qty for t in plan)
        if request.post_only and plan:
            return OrderResult(
                order_id,
                OrderStatus.REJECTED,
                reason="post_only_would_cross",
                detail=f"a post-only {request.side} at {request.price} would take liquidity",
            )
        if request.tif is TimeInForce.FOK and filled < request.qty:
            return OrderResult(
                order_id,
                OrderStatus.REJECTED,
                reason="fok_unfillable",
                detail=f"{filled} of {request.qty} lots available within the order's limits",
            )
        opposite = self._side(request.side.opposite)
        for trade in plan:
            maker = self.orders[trade.maker_order_id]
            opposite.take(maker, trade.qty)
            if maker.remaining == 0:
                del self.orders[maker.order_id]
        remaining = request.qty - filled
        resting = None
        if remaining and request.tif is TimeInForce.GTC:
            assert request.price is not None  # GTC is a limit (``_invalid``)
            self._priority += 1
            resting = RestingOrder(
                order_id,
                request.side,
                request.price,
                request.qty,
                remaining,
                request.owner,
                self._priority,
            )
            self._side(request.side).add(resting)
            self.orders[order_id] = resting
        status = (
            OrderStatus.FILLED
            if remaining == 0
            else OrderStatus.OPEN
            if resting is not None
            else OrderStatus.CANCELLED
        )
        return OrderResult(
            order_id,
            status,
            filled,
            sum(t.notional for t in plan),
            sum(t.taker_fee for t in plan),
            tuple(plan),
            resting,
        )

    def quote(self, request: OrderRequest) -> OrderResult:
        """What ``submit`` would do now, without doing it (nothing rests, ids unused)."""
        problem = self._invalid(request)
        if problem is not None:
            return OrderResult(0, OrderStatus.REJECTED, reason="invalid_order", detail=problem)
        plan = self._plan(request, 0)
        filled = sum(t.qty for t in plan)
        return OrderResult(
            0,
            OrderStatus.FILLED if filled == request.qty else OrderStatus.CANCELLED,
            filled,
            sum(t.notional for t in plan),
            sum(t.taker_fee for t in plan),
            tuple(plan),
        )

    def cancel(self, order_id: int) -> RestingOrder | None:
        """Take a resting order out of the book; ``None`` if it is not resting."""
        order = self.orders.pop(order_id, None)
        if order is not None:
            self._side(order.side).remove(order)
        return order

    # ------------------------------------------------------------------------- internals

    def _side(self, side: Side) -> _Side:
        return self._bids if side is Side.BUY else self._asks

    @staticmethod
    def _invalid(r: OrderRequest) -> str | None:
        if r.qty <= 0:
            return f"quantity must be at least one lot, got {r.qty}"
        if r.order_type is OrderType.LIMIT and (r.price is None or r.price <= 0):
            return f"a limit order needs a positive price in ticks, got {r.price}"
        if r.order_type is OrderType.MARKET and r.price is not None:
            return "a market order has no price"
        if r.order_type is OrderType.MARKET and r.tif is TimeInForce.GTC:
            return "a market order cannot rest: use IOC or FOK"
        if r.post_only and (r.order_type is not OrderType.LIMIT or r.tif is not TimeInForce.GTC):
            return "post-only is for GTC limit orders"
        if r.quote_limit is not None and r.quote_limit <= 0:
            return f"quote_limit must be positive, got {r.quote_limit}"
        if r.quote_limit is not None and r.tif is TimeInForce.GTC:
            return "a quote-limited order cannot rest: use IOC or FOK"
        if r.average_limit is not None and r.average_limit <= 0:
            return f"average_limit must be positive, got {r.average_limit}"
        if r.average_limit is not None and r.tif is TimeInForce.GTC:
            return "an average-limited order cannot rest: use IOC or FOK"
        return None

    def _crosses(self, request: OrderRequest, price: int) -> bool:
        if request.price is None:
            return True
        return price <= request.price if request.side is Side.BUY else price >= request.price

    def _plan(self, request: OrderRequest, taker_id: int) -> list[Trade]:
        trades: list[Trade] = []
        want = request.qty
        budget = request.quote_limit  # buy: left to spend; sell: proceeds still wanted
        filled, moved = 0, 0  # lots and quote (fees in) so far, for ``average_limit``
        opposite = self._side(request.side.opposite)
        for price in opposite.best_first():
            if not self._crosses(request, price):
                break
            for maker in opposite.orders[price]:
                qty = min(want, maker.remaining)
                if budget is not None:
                    qty = min(qty, self._within_budget(request.side, price, budget))
                if request.average_limit is not None:
                    qty = self._within_average(request, price, qty, filled, moved)
                if qty == 0:  # nothing more here, nor at any worse price
                    return trades
                notional = price * qty * self.unit
                taker_fee = fee_of(notional, self.taker_fee)
                filled += qty
                moved += notional + taker_fee if request.side is Side.BUY else notional - taker_fee
                trades.append(
                    Trade(
                        maker.order_id,
                        taker_id,
                        request.side,
                        price,
                        qty,
                        notional,
                        fee_of(notional, self.maker_fee),
                        taker_fee,
                        maker.owner,
                    )
                )
                want -= qty
                if budget is not None:
                    budget -= (
                        notional + taker_fee if request.side is Side.BUY else notional - taker_fee
                    )
                if want == 0 or (budget is not None and budget <= 0):
                    return trades
        return trades

    def _within_average(
        self, request: OrderRequest, price: int, most: int, filled: int, moved: int
    ) -> int:
        """The most lots (up to ``most``) at ``price`` that keep the order's average within
        ``average_limit``, given ``filled`` lots that moved ``moved`` quote so far (fees in).

        Buy: ``qty * (moved + cost(k)) <= limit * (filled + k)``; sell: ``qty * (moved +
        proceeds(k)) >= limit * (filled + k)``.  Levels come best first, so once a level
        would break the average, every worse one would too."""
        limit, whole = request.average_limit, request.qty
        assert limit is not None
        buy = request.side is Side.BUY

        def fits(k: int) -> bool:
            notional = price * k * self.unit
            fee = fee_of(notional, self.taker_fee)
            if buy:
                return whole * (moved + notional + fee) <= limit * (filled + k)
            return whole * (moved + notional - fee) >= limit * (filled + k)

        if fits(most):
            return most
        # Per lot the fee-free rate: k fits up to about slack / (per-lot excess); the fee's
        # rounding is settled by the exact check below.
        per_lot = price * self.unit
        rate = (
            per_lot * (FEE_DENOMINATOR + self.taker_fee)
            if buy
            else per_lot * (FEE_DENOMINATOR - self.taker_fee)
        )
        slack = (limit * filled - whole * moved) * FEE_DENOMINATOR
        excess = whole * rate - limit * FEE_DENOMINATOR
        if not buy:
            slack, excess = -slack, -excess
        k = max(0, min(most, slack // excess)) if excess > 0 else most
        while k > 0 and not fits(k):
            k -= 1
        return k

    def _within_budget(self, side: Side, price: int, budget: int) -> int:
        """Buy: the most lots at ``price`` that ``budget`` pays for, fees included.  Sell:
        the fewest lots at ``price`` whose proceeds, less fees, reach ``budget``."""
        per_lot = price * self.unit
        if side is Side.BUY:
            # cost(q) >= q * per_lot * (D + fee) / D, so no more than this can be afforded;
            # the fee's rounding up may cost one or two lots less.
            qty = budget * FEE_DENOMINATOR // (per_lot * (FEE_DENOMINATOR + self.taker_fee))
            while qty > 0 and qty * per_lot + fee_of(qty * per_lot, self.taker_fee) > budget:
                qty -= 1
            return qty
        # proceeds(q) <= q * per_lot * (D - fee) / D, so at least this many are needed.
        denominator = per_lot * (FEE_DENOMINATOR - self.taker_fee)
        qty = -(-budget * FEE_DENOMINATOR // denominator)
        while qty * per_lot - fee_of(qty * per_lot, self.taker_fee) < budget:
            qty += 1
        return qty
