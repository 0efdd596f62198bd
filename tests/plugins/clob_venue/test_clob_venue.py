"""ClobVenue against its real SQLite ledger: the Venue protocol (steps as IOC limits at their
bound, idempotent by step id), the order-book interface, latency, restarts, two processes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from clob_support import Clock, OpenVenue, make_step, market

from pipeline.models import ExecutionStep, SwapMode
from pipeline.plugins.venue import StepRejected, Submission, TransientVenueError, Venue
from plugins.clob_venue import ClobVenue, OrderError, OrderType, Side, TimeInForce

MAKER_CFG = {"spread_bps": "10", "levels": 5, "level_size": "2", "refresh_ms": 1000}


async def asks(venue: ClobVenue, *levels: tuple[str, str]) -> None:
    for price, qty in levels:
        await venue.place_order("WETH-USDC", Side.SELL, Decimal(qty), Decimal(price))


async def bids(venue: ClobVenue, *levels: tuple[str, str]) -> None:
    for price, qty in levels:
        await venue.place_order("WETH-USDC", Side.BUY, Decimal(qty), Decimal(price))


async def test_a_resting_order_shows_in_the_book_and_its_status(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    assert isinstance(venue, Venue)
    assert await venue.pools() == []
    info = await venue.place_order("WETH-USDC", Side.BUY, Decimal("1.0005"), Decimal("2999.999"))
    # Quantity down to whole lots, a buy's price down to the tick.
    assert (info.status, info.qty, info.price) == ("open", Decimal("1.000"), Decimal("2999.99"))
    book = (await venue.books())["WETH-USDC"]
    assert (book.bids, book.asks) == (((299_999, 1000),), ())
    assert book.seq == 1
    assert await venue.order_status(info.order_ref) == info
    cancelled = await venue.cancel(info.order_ref)
    assert cancelled.status == "cancelled"
    book = (await venue.books())["WETH-USDC"]
    assert (book.bids, book.seq) == ((), 2)


async def test_order_book_interface_refuses_what_cannot_be_an_order(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    with pytest.raises(OrderError, match="unknown_market"):
        await venue.place_order("BTC-USDC", Side.BUY, Decimal(1), Decimal(1))
    with pytest.raises(OrderError, match="below_lot"):
        await venue.place_order("WETH-USDC", Side.BUY, Decimal("0.0009"), Decimal(1))
    with pytest.raises(OrderError, match="unknown_order"):
        await venue.order_status("clob_b-1")


async def test_a_buy_step_fills_as_quoted_and_is_recorded_once(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    await asks(venue, ("3000", "1"), ("3001", "1"))
    step = make_step("USDC", "WETH", "4504.5", bound="1.4")
    quoted = await venue.quote(step)
    submission = await venue.submit(step)
    fill = await venue.wait_receipt(submission, timeout_s=1)
    assert fill.amount_out == quoted == Decimal("1.499")
    # 1 WETH at 3000 and 0.499 at 3001 = 4497.499 USDC, plus the 0.1 % taker fee (rounded up).
    assert fill.amount_in == Decimal("4497.499") + Decimal("4.497499")
    assert fill.amount_in <= Decimal("4504.5")
    assert venue.fill_counts() == {"step-1": 1}
    assert venue.total_fills() == 2  # one trade per maker order
    # Redelivered: the same order, no second execution.
    assert await venue.lookup("step-1") == submission
    assert await venue.submit(step) == submission
    assert await venue.wait_receipt(submission, timeout_s=1) == fill
    assert venue.fill_counts() == {"step-1": 1}


async def test_a_sell_step_is_an_ioc_at_its_bound(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    await bids(venue, ("3000", "1"), ("2990", "5"))
    # min_out 2996.5 for 1 WETH: the limit is 2996.5 / 0.999 = 2999.4994..., up to 2999.50.
    fill = await venue.wait_receipt(
        await venue.submit(make_step("WETH", "USDC", "1", bound="2996.5")), timeout_s=1
    )
    assert (fill.amount_in, fill.amount_out) == (Decimal("1.000"), Decimal("2997.000000"))
    # The next step would have to hit 2990: beyond its bound, so nothing fills.
    step = make_step("WETH", "USDC", "1", bound="2996.5", step_id="step-2")
    with pytest.raises(StepRejected) as caught:
        await venue.wait_receipt(await venue.submit(step), timeout_s=1)
    assert caught.value.reason == "unfilled"
    assert "limit 2999.50" in caught.value.detail
    assert (await venue.books())["WETH-USDC"].bids == ((299_000, 5000),)  # untouched


async def test_a_book_thinner_than_the_step_fills_partially(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    await asks(venue, ("3000", "0.5"), ("3100", "5"))
    step = make_step("USDC", "WETH", "2", mode=SwapMode.EXACT_OUT, bound="6100")
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=1)
    # The bound is 6100 / (2 * 1.001) = 3046.95: 3100 is out of reach.
    assert fill.amount_out == Decimal("0.500")
    assert fill.amount_in == Decimal("1501.5")
    status = await venue.order_status(fill.order_ref)
    assert (status.status, status.price) == ("cancelled", Decimal("3046.95"))


async def test_exact_out_sell_stops_at_its_proceeds(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    await bids(venue, ("3000", "5"))
    step = make_step("WETH", "USDC", "1498.5", mode=SwapMode.EXACT_OUT, bound="2")
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=1)
    assert fill.amount_out >= Decimal("1498.5")
    assert fill.amount_in == Decimal("0.500")


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (make_step("USDC", "WETH", "100", venue="sim"), "wrong_venue"),
        (make_step("USDC", "WETH", "100", market_id="DAI-USDC"), "unknown_market"),
        (make_step("DAI", "USDC", "100"), "bad_route"),
        (make_step("WETH", "USDC", "0.0001"), "below_lot"),
        (make_step("USDC", "WETH", "100", bound="1000000"), "slippage"),  # below one tick
    ],
)
async def test_steps_no_book_can_carry_are_rejected_at_submit(
    open_venue: OpenVenue, step: object, reason: str
) -> None:
    venue = await open_venue()
    with pytest.raises(StepRejected) as caught:
        await venue.submit(step)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert await venue.lookup("step-1") is None


async def test_latency_delays_reaching_the_book(open_venue: OpenVenue, clock: Clock) -> None:
    venue = await open_venue(latency_ms=200)
    await asks(venue, ("3000", "1"))
    clock.advance(200)
    submission = await venue.submit(make_step("USDC", "WETH", "3003", bound="0.9"))
    assert (await venue.order_status(submission.order_ref)).status == "pending"
    with pytest.raises(TransientVenueError):
        await venue.wait_receipt(submission, timeout_s=0.05)  # the clock does not move
    clock.advance(200)
    fill = await venue.wait_receipt(submission, timeout_s=1)
    assert fill.amount_out == Decimal("1.000")


async def test_a_restarted_venue_keeps_its_book_and_priority(open_venue: OpenVenue) -> None:
    first = await open_venue()
    a = await first.place_order("WETH-USDC", Side.SELL, Decimal(1), Decimal(3000))
    b = await first.place_order("WETH-USDC", Side.SELL, Decimal(1), Decimal(3000))
    await first.stop()
    second = await open_venue()
    assert (await second.books())["WETH-USDC"].asks == ((300_000, 2000),)
    taker = await second.place_order(
        "WETH-USDC", Side.BUY, Decimal(1), Decimal(3000), tif=TimeInForce.IOC
    )
    assert taker.status == "filled"
    assert (await second.order_status(a.order_ref)).status == "filled"  # the older one
    assert (await second.order_status(b.order_ref)).status == "open"
    assert (
        await second.place_order(
            "WETH-USDC",
            Side.BUY,
            Decimal(1),
            None,
            order_type=OrderType.MARKET,
            tif=TimeInForce.IOC,
        )
    ).order_ref not in (a.order_ref, b.order_ref, taker.order_ref)


async def test_two_processes_on_one_ledger_see_one_book(open_venue: OpenVenue) -> None:
    one, two = await open_venue(), await open_venue()
    await asks(one, ("3000", "1"))
    fill = await two.wait_receipt(await two.submit(make_step("USDC", "WETH", "3003")), 1)
    assert fill.amount_out == Decimal("1.000")
    assert (await one.books())["WETH-USDC"].asks == ()
    # One client order id across both: the second process finds the first's order.
    assert await one.submit(make_step("USDC", "WETH", "3003")) == Submission(
        "step-1", fill.order_ref
    )
    assert one.fill_counts() == two.fill_counts() == {"step-1": 1}


async def test_makers_quote_around_the_reference_and_refresh(
    open_venue: OpenVenue, clock: Clock
) -> None:
    venue = await open_venue(
        markets={"WETH-USDC": market(MAKER_CFG, volatility_bps="100", period_s="60")}
    )
    first = (await venue.books())["WETH-USDC"]
    assert len(first.bids) == len(first.asks) == 5
    assert all(size == 2000 for _, size in first.bids + first.asks)
    spread = first.asks[0][0] - first.bids[0][0]
    assert 299 <= spread <= 302  # 10 bps of ~3000 USDC: ~3 USDC, ~300 ticks of 0.01
    assert abs((first.asks[0][0] + first.bids[0][0]) / 2 - 300_000) < 300_000 * 0.0101
    again = (await venue.books())["WETH-USDC"]
    assert again == first  # no refresh within the period
    clock.advance(5000)
    moved = (await venue.books())["WETH-USDC"]
    assert moved.seq > first.seq
    assert moved.bids != first.bids
    # Withdrawn quotes that never traded leave no rows: the ledger does not grow per refresh.
    rows = venue.ledger._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert rows == 10


async def test_a_taker_trades_with_the_maker_and_the_maker_keeps_its_fill(
    open_venue: OpenVenue, clock: Clock
) -> None:
    venue = await open_venue(markets={"WETH-USDC": market(MAKER_CFG)})
    book = (await venue.books())["WETH-USDC"]
    fill = await venue.wait_receipt(
        await venue.submit(make_step("USDC", "WETH", "10000", bound="3.2")), timeout_s=1
    )
    # The best asks are 3001.50 and a tick above (2 WETH each): 10,000 USDC buys ~3.33.
    assert Decimal("3.32") < fill.amount_out < Decimal("3.34")
    assert fill.amount_in <= Decimal(10_000)
    assert venue.fill_counts() == {"step-1": 1}
    clock.advance(1000)
    await venue.books()
    traded = venue.ledger._db.execute(
        "SELECT COUNT(*) FROM orders WHERE owner = 'maker' AND filled_qty > 0"
    ).fetchone()[0]
    assert traded == 2  # both levels it took from, kept (cancelled) for their fills
    assert book.asks[0][0] > book.bids[0][0]


def with_limit(step: ExecutionStep, price: str) -> ExecutionStep:
    return step.model_copy(update={"limit_price": Decimal(price)})


async def test_a_child_over_several_levels_fills_whole_at_its_worst_level(
    open_venue: OpenVenue,
) -> None:
    """The planner's child of 2 WETH sweeps 3000 and 3010: (3000 + 3010) * 1.001 = 6016.01
    with fees, 6022.03 with 0.1 % slippage.  A limit from that average (3008.00) would stop
    at the first level; the worst level as the limit fills both, within the total bound."""
    venue = await open_venue()
    await asks(venue, ("3000", "1"), ("3010", "1"))
    buy = make_step("USDC", "WETH", "2", mode=SwapMode.EXACT_OUT, bound="6022.03")
    unbounded = await venue.wait_receipt(await venue.submit(buy), timeout_s=1)
    assert unbounded.amount_out == Decimal("1.000")  # the gap: the average's limit under-fills
    await asks(venue, ("3000", "1"))
    step = with_limit(buy.model_copy(update={"step_id": "step-2"}), "3010")
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=1)
    assert fill.amount_out == Decimal("2.000")
    assert fill.amount_in == Decimal("6016.01") <= step.max_in
    # The book version that first includes the fill (what the re-planning executor awaits).
    assert fill.landed_at == (await venue.books())["WETH-USDC"].seq


async def test_a_sell_child_fills_whole_at_its_worst_level_with_its_floor_kept(
    open_venue: OpenVenue,
) -> None:
    venue = await open_venue()
    await bids(venue, ("3000", "1"), ("2990", "1"))
    # (3000 + 2990) * 0.999 = 5984.01; min_out 5978.02 with 0.1 % slippage.
    step = with_limit(make_step("WETH", "USDC", "2", bound="5978.02"), "2990")
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=1)
    assert (fill.amount_in, fill.amount_out) == (Decimal("2.000"), Decimal("5984.010000"))
    # The book moved down: only 2990 is left.  Each lot would bring 2987.01 < 2989.01, the
    # floor's average, so nothing fills although the limit price allows it.
    await bids(venue, ("2990", "3"))
    moved = with_limit(make_step("WETH", "USDC", "2", bound="5978.02", step_id="s2"), "2990")
    with pytest.raises(StepRejected) as caught:
        await venue.wait_receipt(await venue.submit(moved), timeout_s=1)
    assert caught.value.reason == "unfilled"


async def test_a_moved_book_leaves_the_rest_of_a_child_unfilled_within_its_average(
    open_venue: OpenVenue,
) -> None:
    venue = await open_venue()
    # Planned on 3000 x 1 and 3010 x 1; by execution 3000 has only 0.2 left: 2 WETH would
    # cost (600 + 5418) * 1.001 = 6024.018, above max_in.
    await asks(venue, ("3000", "0.2"), ("3010", "5"))
    step = with_limit(
        make_step("USDC", "WETH", "2", mode=SwapMode.EXACT_OUT, bound="6022.03"), "3010"
    )
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=1)
    assert Decimal("0.2") < fill.amount_out < Decimal(2)
    # Whatever filled paid no more than its share of max_in.
    assert fill.amount_in * 2 <= Decimal("6022.03") * fill.amount_out
