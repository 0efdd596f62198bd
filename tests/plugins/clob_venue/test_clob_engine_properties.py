"""Property tests of the matching engine: random order flow against a naive reference model,
and the invariants (never crossed, quantities conserved, limits respected)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.clob_venue.engine import (
    MatchingEngine,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    fee_of,
)


@dataclass
class _Naive:
    """The slowest correct book: a list of [id, side, price, remaining, arrival]."""

    orders: list[list[int]]
    arrivals: int = 0

    def submit(self, order_id: int, r: OrderRequest) -> list[tuple[int, int, int]]:
        buy = r.side is Side.BUY
        makers = sorted(
            (o for o in self.orders if o[1] != buy), key=lambda o: (o[2] if buy else -o[2], o[4])
        )
        crossing = [
            o for o in makers if r.price is None or (o[2] <= r.price if buy else o[2] >= r.price)
        ]
        available = sum(o[3] for o in crossing)
        if r.post_only and crossing:
            return []
        if r.tif is TimeInForce.FOK and available < r.qty:
            return []
        trades, want = [], r.qty
        for o in crossing:
            if want == 0:
                break
            take = min(want, o[3])
            o[3] -= take
            want -= take
            trades.append((o[0], o[2], take))
        self.orders = [o for o in self.orders if o[3] > 0]
        if want and r.tif is TimeInForce.GTC and r.order_type is OrderType.LIMIT:
            self.arrivals += 1
            assert r.price is not None
            self.orders.append([order_id, int(buy), r.price, want, self.arrivals])
        return trades

    def cancel(self, order_id: int) -> None:
        self.orders = [o for o in self.orders if o[0] != order_id]


requests = st.builds(
    OrderRequest,
    side=st.sampled_from(Side),
    qty=st.integers(1, 20),
    price=st.integers(90, 110),
    order_type=st.just(OrderType.LIMIT),
    tif=st.sampled_from(TimeInForce),
    post_only=st.booleans(),
).map(
    lambda r: (
        r
        if not r.post_only or r.tif is TimeInForce.GTC
        else OrderRequest(r.side, r.qty, r.price, r.order_type, r.tif)
    )
)
markets = st.builds(
    lambda side, qty, fok: OrderRequest(
        side, qty, None, OrderType.MARKET, TimeInForce.FOK if fok else TimeInForce.IOC
    ),
    st.sampled_from(Side),
    st.integers(1, 30),
    st.booleans(),
)
operations = st.lists(
    st.one_of(
        requests, requests, requests, markets, st.integers(1, 60)
    ),  # an int: cancel that order id
    max_size=60,
)


def _check_book(engine: MatchingEngine) -> None:
    bids, asks = engine.levels()
    if bids and asks:
        assert bids[0][0] < asks[0][0], "crossed book"
    assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
    assert [p for p, _ in asks] == sorted({p for p, _ in asks})
    # Each level's size is the sum of its resting orders'.
    for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
        for price, size in levels:
            assert (
                size
                == sum(
                    o.remaining
                    for o in engine.orders.values()
                    if o.side is side and o.price == price
                )
                > 0
            )


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_engine_matches_like_the_naive_model(ops: list[OrderRequest | int]) -> None:
    engine = MatchingEngine("m", unit=1)
    naive = _Naive([])
    for op in ops:
        if isinstance(op, int):
            engine.cancel(op)
            naive.cancel(op)
        else:
            result = engine.submit(op)
            expected = naive.submit(result.order_id, op)
            assert [(t.maker_order_id, t.price, t.qty) for t in result.trades] == expected
        _check_book(engine)
        assert sorted((o.order_id, o.remaining) for o in engine.orders.values()) == sorted(
            (o[0], o[3]) for o in naive.orders
        )


@settings(max_examples=300, deadline=None)
@given(operations, st.integers(0, 5000), st.integers(0, 5000))
def test_quantities_are_conserved_and_limits_respected(
    ops: list[OrderRequest | int], taker_fee: int, rebate: int
) -> None:
    engine = MatchingEngine("m", unit=7, maker_fee=-min(rebate, taker_fee), taker_fee=taker_fee)
    placed: dict[int, int] = {}
    traded: dict[int, int] = {}
    cancelled: dict[int, int] = {}
    taken = 0
    for op in ops:
        if isinstance(op, int):
            gone = engine.cancel(op)
            if gone is not None:
                cancelled[op] = gone.remaining
            continue
        result = engine.submit(op)
        filled = sum(t.qty for t in result.trades)
        assert filled == result.filled_qty <= op.qty
        taken += filled
        if op.tif is TimeInForce.FOK:
            assert filled in (0, op.qty)
        if op.post_only:
            assert filled == 0
        for t in result.trades:
            assert t.notional == t.price * t.qty * 7
            assert t.taker_fee == fee_of(t.notional, taker_fee) >= 0
            assert t.maker_fee <= 0
            assert t.taker_fee + t.maker_fee >= 0
            if op.price is not None:
                assert t.price <= op.price if op.side is Side.BUY else t.price >= op.price
            traded[t.maker_order_id] = traded.get(t.maker_order_id, 0) + t.qty
        prices = [t.price for t in result.trades]
        assert prices == sorted(prices, reverse=op.side is Side.SELL)  # best price first
        if result.status is not OrderStatus.REJECTED:
            placed[result.order_id] = op.qty
            traded[result.order_id] = traded.get(result.order_id, 0) + filled
            if result.resting is None and op.tif is TimeInForce.GTC:
                assert filled == op.qty
        _check_book(engine)
    # Every lot placed is traded, resting, cancelled, or an IOC remainder; none is created.
    for order_id, qty in placed.items():
        resting = engine.orders[order_id].remaining if order_id in engine.orders else 0
        assert traded.get(order_id, 0) + resting + cancelled.get(order_id, 0) <= qty
    # What takers got is what makers gave.
    assert taken == sum(traded.values()) - taken


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(50, 150), st.integers(1, 50)), min_size=1, max_size=15),
    st.sampled_from(Side),
    st.integers(1, 200_000),
    st.integers(0, 30_000),
)
def test_a_quote_limit_is_never_exceeded_and_never_left_unused_needlessly(
    levels: list[tuple[int, int]], side: Side, limit: int, taker_fee: int
) -> None:
    engine = MatchingEngine("m", unit=3, taker_fee=taker_fee)
    for price, qty in levels:
        # Resting liquidity on the side the taker hits only.
        engine.submit(OrderRequest(side.opposite, qty, price))
    request = OrderRequest(side, 10_000, None, OrderType.MARKET, TimeInForce.IOC, quote_limit=limit)
    result = engine.submit(request)
    if side is Side.BUY:
        spent = result.notional + result.fee
        assert spent <= limit
        best = engine.best_ask
        if best is not None:  # what is left could not pay for one more lot at the best ask
            per_lot = best * 3
            assert spent + per_lot + fee_of(per_lot, taker_fee) > limit or result.filled_qty == 0
    else:
        got = result.notional - result.fee
        if engine.best_bid is not None:  # liquidity was left, so the target was reached ...
            assert got >= limit
            # ... with no lot more than needed.
            last = result.trades[-1]
            one_less = (
                got
                - (last.price * 3)
                + (
                    fee_of(last.notional, taker_fee)
                    - fee_of(last.notional - last.price * 3, taker_fee)
                )
            )
            assert one_less < limit


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(50, 150), st.integers(1, 50)), min_size=1, max_size=15),
    st.sampled_from(Side),
    st.integers(1, 300),
    st.integers(1, 400),
    st.integers(0, 30_000),
)
def test_an_average_limit_holds_and_stops_only_where_the_next_lot_would_break_it(
    levels: list[tuple[int, int]], side: Side, qty: int, average: int, taker_fee: int
) -> None:
    engine = MatchingEngine("m", unit=3, taker_fee=taker_fee)
    for price, size in levels:
        engine.submit(OrderRequest(side.opposite, size, price))
    request = OrderRequest(
        side, qty, None, OrderType.MARKET, TimeInForce.IOC, average_limit=average * qty
    )
    result = engine.quote(request)
    n = result.filled_qty
    if side is Side.BUY:
        assert qty * (result.notional + result.fee) <= average * qty * n
    else:
        assert qty * (result.notional - result.fee) >= average * qty * n
    if n < qty:
        # One more lot than filled, taken best first, breaks the average (or the book is out).
        more = engine.quote(OrderRequest(side, n + 1, None, OrderType.MARKET, TimeInForce.IOC))
        if more.filled_qty == n + 1:
            if side is Side.BUY:
                assert qty * (more.notional + more.fee) > average * qty * (n + 1)
            else:
                assert qty * (more.notional - more.fee) < average * qty * (n + 1)
