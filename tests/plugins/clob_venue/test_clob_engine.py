"""The matching engine alone: priority, every order type, fees, quote limits, cancels."""

from __future__ import annotations

import pytest

from plugins.clob_venue.engine import (
    MatchingEngine,
    OrderRequest,
    OrderStatus,
    OrderType,
    RestingOrder,
    Side,
    TimeInForce,
    fee_of,
)

BUY, SELL = Side.BUY, Side.SELL
IOC, FOK = TimeInForce.IOC, TimeInForce.FOK


def limit(side: Side, qty: int, price: int, **kw: object) -> OrderRequest:
    return OrderRequest(side, qty, price, **kw)  # type: ignore[arg-type]


def market(side: Side, qty: int, tif: TimeInForce = IOC, **kw: object) -> OrderRequest:
    return OrderRequest(side, qty, None, OrderType.MARKET, tif, **kw)  # type: ignore[arg-type]


@pytest.fixture
def book() -> MatchingEngine:
    """Asks 101 x 5 (id 1), 101 x 3 (id 2), 103 x 4 (id 3); bids 99 x 2 (id 4), 98 x 6 (id 5)."""
    engine = MatchingEngine("m", unit=10, maker_fee=-100, taker_fee=2000)
    for request in (
        limit(SELL, 5, 101, owner="a"),
        limit(SELL, 3, 101, owner="b"),
        limit(SELL, 4, 103),
        limit(BUY, 2, 99),
        limit(BUY, 6, 98),
    ):
        assert engine.submit(request).status is OrderStatus.OPEN
    return engine


def test_levels_are_l2_best_first(book: MatchingEngine) -> None:
    assert book.levels() == ([(99, 2), (98, 6)], [(101, 8), (103, 4)])
    assert book.levels(depth=1) == ([(99, 2)], [(101, 8)])
    assert (book.best_bid, book.best_ask) == (99, 101)


def test_price_then_time_priority(book: MatchingEngine) -> None:
    result = book.submit(limit(BUY, 7, 103))
    # The older order at 101 fills first, then the newer one; 103 is not reached.
    assert [(t.maker_order_id, t.price, t.qty) for t in result.trades] == [(1, 101, 5), (2, 101, 2)]
    assert result.status is OrderStatus.FILLED
    assert book.levels()[1] == [(101, 1), (103, 4)]
    assert book.orders[2].remaining == 1


def test_the_taker_gets_the_makers_price_not_its_limit(book: MatchingEngine) -> None:
    result = book.submit(limit(BUY, 2, 110))
    assert {t.price for t in result.trades} == {101}


def test_a_gtc_limit_rests_its_remainder_and_keeps_its_time_priority(book: MatchingEngine) -> None:
    result = book.submit(limit(BUY, 10, 101))
    assert (result.status, result.filled_qty) == (OrderStatus.OPEN, 8)
    assert result.resting is not None
    assert result.resting.remaining == 2
    assert book.levels() == ([(101, 2), (99, 2), (98, 6)], [(103, 4)])
    later = book.submit(limit(BUY, 1, 101))
    hit = book.submit(limit(SELL, 2, 101))
    assert [t.maker_order_id for t in hit.trades] == [result.order_id]
    assert book.orders[later.order_id].remaining == 1


def test_ioc_cancels_its_remainder(book: MatchingEngine) -> None:
    result = book.submit(limit(BUY, 10, 101, tif=IOC))
    assert (result.status, result.filled_qty, result.resting) == (OrderStatus.CANCELLED, 8, None)
    assert book.levels()[0] == [(99, 2), (98, 6)]  # nothing rested


def test_ioc_that_matches_nothing_is_cancelled_unfilled(book: MatchingEngine) -> None:
    result = book.submit(limit(BUY, 3, 100, tif=IOC))
    assert (result.status, result.filled_qty, result.trades) == (OrderStatus.CANCELLED, 0, ())


def test_fok_fills_completely_or_not_at_all(book: MatchingEngine) -> None:
    before = book.levels()
    refused = book.submit(limit(BUY, 9, 101, tif=FOK))
    assert (refused.status, refused.reason) == (OrderStatus.REJECTED, "fok_unfillable")
    assert book.levels() == before  # atomic: nothing was taken
    filled = book.submit(limit(BUY, 9, 103, tif=FOK))
    assert (filled.status, filled.filled_qty) == (OrderStatus.FILLED, 9)


def test_market_orders_take_at_any_price_and_never_rest(book: MatchingEngine) -> None:
    result = book.submit(market(SELL, 10))
    assert [(t.price, t.qty) for t in result.trades] == [(99, 2), (98, 6)]
    assert (result.status, result.filled_qty) == (OrderStatus.CANCELLED, 8)
    assert book.levels()[0] == []
    assert book.submit(market(BUY, 13, FOK)).reason == "fok_unfillable"
    assert book.submit(market(BUY, 12, FOK)).status is OrderStatus.FILLED


def test_post_only_rests_or_is_rejected_never_takes(book: MatchingEngine) -> None:
    rested = book.submit(limit(BUY, 1, 100, post_only=True))
    assert rested.status is OrderStatus.OPEN
    crossing = book.submit(limit(BUY, 1, 101, post_only=True))
    assert (crossing.status, crossing.reason) == (OrderStatus.REJECTED, "post_only_would_cross")
    assert book.levels()[1][0] == (101, 8)


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (OrderRequest(BUY, 0, 100), "at least one lot"),
        (OrderRequest(BUY, 1, None), "positive price"),
        (OrderRequest(BUY, 1, 0), "positive price"),
        (OrderRequest(BUY, 1, 100, OrderType.MARKET, IOC), "no price"),
        (OrderRequest(BUY, 1, None, OrderType.MARKET), "cannot rest"),
        (OrderRequest(BUY, 1, 100, tif=IOC, post_only=True), "post-only"),
        (OrderRequest(BUY, 1, 100, quote_limit=5), "cannot rest"),
        (OrderRequest(BUY, 1, 100, tif=IOC, quote_limit=0), "positive"),
    ],
)
def test_invalid_orders_are_rejected_without_touching_the_book(
    book: MatchingEngine, request_: OrderRequest, needle: str
) -> None:
    before = book.levels()
    result = book.submit(request_)
    assert (result.status, result.reason) == (OrderStatus.REJECTED, "invalid_order")
    assert needle in (result.detail or "")
    assert book.levels() == before


def test_fees_maker_rebate_and_taker_charge_round_in_the_venues_favour() -> None:
    engine = MatchingEngine("m", unit=1, maker_fee=-150, taker_fee=1000)
    engine.submit(limit(SELL, 7, 143))
    [trade] = engine.submit(limit(BUY, 7, 143)).trades
    assert trade.notional == 1001
    assert trade.taker_fee == 2  # 1001 * 0.1 % = 1.001 -> 2 (a charge rounds up)
    assert trade.maker_fee == 0  # -0.15015 -> 0 (a rebate rounds toward zero)
    assert fee_of(10_000, -150) == -1
    assert fee_of(10_000, 1000) == 10


def test_fees_are_validated() -> None:
    with pytest.raises(ValueError, match="fees out of range"):
        MatchingEngine("m", unit=1, maker_fee=-2000, taker_fee=1000)
    with pytest.raises(ValueError, match="unit"):
        MatchingEngine("m", unit=0)


def test_a_buy_with_a_quote_limit_spends_at_most_it_fees_included(book: MatchingEngine) -> None:
    # 101 * 10 = 1010 per lot plus 0.2 % fee: 4 lots cost 4040 + 9 = 4049.
    result = book.submit(OrderRequest(BUY, 100, 103, tif=IOC, quote_limit=4049))
    assert (result.filled_qty, result.notional, result.fee) == (4, 4040, 9)
    result = book.submit(OrderRequest(BUY, 100, 103, tif=IOC, quote_limit=4048))
    assert result.filled_qty == 3  # one base unit short of the fourth lot
    assert result.notional + result.fee <= 4048


def test_a_sell_with_a_quote_limit_stops_once_its_proceeds_reach_it(book: MatchingEngine) -> None:
    # 99 * 10 = 990 per lot less 0.2 %: 2 lots give 1980 - 4 = 1976; the third comes from 98.
    result = book.submit(OrderRequest(SELL, 100, 90, tif=IOC, quote_limit=1977))
    assert [(t.price, t.qty) for t in result.trades] == [(99, 2), (98, 1)]
    assert result.notional - result.fee >= 1977


def test_quote_is_a_dry_run_of_submit(book: MatchingEngine) -> None:
    request = limit(BUY, 10, 103, tif=IOC)
    before = book.levels()
    dry = book.quote(request)
    assert book.levels() == before
    real = book.submit(request)
    assert (dry.filled_qty, dry.notional, dry.fee) == (real.filled_qty, real.notional, real.fee)


def test_cancel_removes_a_resting_order_once(book: MatchingEngine) -> None:
    cancelled = book.cancel(2)
    assert cancelled is not None
    assert cancelled.remaining == 3
    assert book.levels()[1] == [(101, 5), (103, 4)]
    assert book.cancel(2) is None
    assert book.cancel(999) is None
    book.cancel(1)
    assert book.levels()[1] == [(103, 4)]  # the emptied level is gone


def test_restore_rebuilds_priority_and_refuses_a_crossed_book() -> None:
    engine = MatchingEngine("m", unit=1)
    engine.restore(
        [RestingOrder(7, SELL, 101, 5, 5, priority=9), RestingOrder(3, SELL, 101, 5, 2, priority=4)]
    )
    assert engine.next_order_id == 8
    assert [t.maker_order_id for t in engine.submit(limit(BUY, 3, 101)).trades] == [3, 7]
    with pytest.raises(ValueError, match="cross"):
        engine.restore([RestingOrder(9, BUY, 102, 1, 1, priority=10)])


def test_an_average_limit_takes_worse_levels_only_while_the_average_holds(
    book: MatchingEngine,
) -> None:
    # Asks 101 x 5 and x 3, 103 x 4; per lot 1010 or 1030 plus 0.2 % (rounded up per trade).
    # 10 lots may pay 10,260 in all: the 8 at 101 cost 5,061 + 3,037 and 2 at 103 2,065.
    result = book.quote(OrderRequest(BUY, 10, 103, tif=IOC, average_limit=10_260))
    assert [(t.price, t.qty) for t in result.trades] == [(101, 5), (101, 3), (103, 2)]
    assert result.notional + result.fee <= 10_260
    # A tighter average stops within the worse level, not at its first lot: 12,200 for 12 is
    # 1,016.67 a lot; 8,098 + 2,065 for 10 lots is within 10 of them, + 3,097 for 11 is not.
    result = book.quote(OrderRequest(BUY, 12, 103, tif=IOC, average_limit=12_200))
    assert (result.filled_qty, result.status) == (10, OrderStatus.CANCELLED)
    assert 12 * (result.notional + result.fee) <= 12_200 * result.filled_qty
    # The limit price still binds: nothing beyond 101.
    result = book.quote(OrderRequest(BUY, 10, 101, tif=IOC, average_limit=10_260))
    assert result.filled_qty == 8


def test_a_sell_average_limit_is_a_floor_on_the_proceeds_per_lot(book: MatchingEngine) -> None:
    # Bids 99 x 2, 98 x 6; per lot 990 or 980 less 0.2 % (rounded up per trade).  4 lots
    # must bring 3,930 in all: the 2 at 99 bring 1,976 and 2 at 98 another 1,956.
    result = book.quote(OrderRequest(SELL, 4, 98, tif=IOC, average_limit=3_930))
    assert [(t.price, t.qty) for t in result.trades] == [(99, 2), (98, 2)]
    assert 4 * (result.notional - result.fee) >= 3_930 * result.filled_qty
    # 984 a lot: 1,976 + 978 (980 less a fee of 1.96, rounded up) = 2,954 >= 3 * 984; a
    # fourth lot would bring 3,932 < 4 * 984.
    result = book.quote(OrderRequest(SELL, 8, 98, tif=IOC, average_limit=8 * 984))
    assert result.filled_qty == 3


def test_an_average_limit_cannot_rest(book: MatchingEngine) -> None:
    result = book.submit(OrderRequest(BUY, 1, 99, average_limit=1_000))
    assert (result.status, result.reason) == (OrderStatus.REJECTED, "invalid_order")
    result = book.submit(OrderRequest(BUY, 1, 99, tif=IOC, average_limit=0))
    assert result.status is OrderStatus.REJECTED
