"""From the pipeline's human Decimals to the engine's orders, and back.

``step_order`` turns an ``ExecutionStep`` into an IOC order whose limit is the step's price
bound, so slippage protection holds on a book as on a chain (each trade is at the bound or
better, and a quote limit keeps what is spent or received within the step's amounts):

    step                  side  qty (lots)          limit (ticks)                  quote_limit
    sell base, EXACT_IN   sell  floor(amount_in)    ceil(min_out / (q (1-f)))      --
    sell base, EXACT_OUT  sell  floor(max_in)       ceil(amount_out / (q (1-f)))   amount_out
    buy base,  EXACT_IN   buy   (the budget's)      floor(amount_in / (min_out (1+f)))  amount_in
    buy base,  EXACT_OUT  buy   ceil(amount_out)    floor(max_in / (q (1+f)))      max_in

(a sell's quote limit is the proceeds it stops at, a buy's the most it spends, fees in).
``f`` is the taker fee.  A bound of 0 (no ``min_out``) is a market order.  Rounding is
always on the protective side: quantities spent round down, quantities wanted up, a buy's
limit down and a sell's up.  A fee rounds up per trade, so a sell's proceeds can fall short
of the bound by at most one quote base unit per trade it made.

A step with a ``limit_price`` (the planner's book steps: the worst of the venue's prices its
sweep takes) gets that as the limit instead, and its average-based bound as the order's
``average_limit`` (a buy EXACT_OUT: ``max_in``, as well as its quote limit; a sell EXACT_IN:
``min_out``).  A limit from the average alone stops a child that sweeps several levels at the
first level dearer than the average plus the slippage, although the plan counted on it; with
the worst level as the limit and the average bounded apart, the book as planned fills the
child whole, and a book that moved leaves the rest unfilled (``Fill`` below the step's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pipeline.models.assets import Asset
from pipeline.models.plan import ExecutionStep, SwapMode
from plugins.clob_venue.books import MarketInfo
from plugins.clob_venue.config import ClobVenueConfig, MarketConfig
from plugins.clob_venue.engine import (
    FEE_DENOMINATOR,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from plugins.clob_venue.ledger import OrderRecord
from plugins.clob_venue.makers import Ladder, ReferencePath
from plugins.clob_venue.units import from_units, of_steps, steps, to_units


class OrderError(Exception):
    """Not an order this venue can take; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Market:
    """A configured market with its units resolved against the asset registry."""

    market_id: str
    config: MarketConfig
    base: Asset
    quote: Asset
    unit: int
    """Quote base units per tick per lot."""
    lot_units: int
    """Base units per lot."""
    taker_fee: int
    reference: ReferencePath
    ladder: Ladder | None
    info: MarketInfo

    @classmethod
    def of(
        cls,
        venue: str,
        market_id: str,
        config: MarketConfig,
        venue_config: ClobVenueConfig,
        assets: Mapping[str, Asset],
    ) -> Market:
        base, quote = assets[config.base], assets[config.quote]
        info = MarketInfo(
            venue,
            market_id,
            base.chain_id,
            base.symbol,
            quote.symbol,
            config.tick_size,
            config.lot_size,
            venue_config.maker_fee,
            venue_config.taker_fee,
        )
        return cls(
            market_id,
            config,
            base,
            quote,
            config.notional_unit(assets),
            config.lot_units(assets),
            venue_config.taker_fee,
            config.reference(venue_config.seed, market_id),
            config.ladder(),
            info,
        )

    def price(self, ticks: int) -> Decimal:
        return of_steps(ticks, self.config.tick_size)

    def size(self, lots: int) -> Decimal:
        return of_steps(lots, self.config.lot_size)

    def quote_amount(self, units: int) -> Decimal:
        return from_units(units, self.quote.decimals)

    def amounts(self, side: Side, lots: int, notional: int, fee: int) -> tuple[Decimal, Decimal]:
        """``(paid, received)`` by a taker: a buy pays notional and fee for base, a sell pays
        base for notional less fee."""
        base = from_units(lots * self.lot_units, self.base.decimals)
        if side is Side.BUY:
            return self.quote_amount(notional + fee), base
        return base, self.quote_amount(notional - fee)

    def request(
        self,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        order_type: OrderType,
        tif: TimeInForce,
        post_only: bool,
        owner: str,
    ) -> OrderRequest:
        lots = steps(qty, self.config.lot_size)
        if lots <= 0:
            raise OrderError(
                "below_lot",
                f"{qty} {self.base.symbol} is less than one lot "
                f"({self.config.lot_size}) in {self.market_id}",
            )
        ticks = None
        if price is not None:
            ticks = steps(price, self.config.tick_size, round_up=side is Side.SELL)
            if ticks <= 0:
                raise OrderError(
                    "below_tick",
                    f"price {price} is less than one tick "
                    f"({self.config.tick_size}) in {self.market_id}",
                )
        return OrderRequest(side, lots, ticks, order_type, tif, post_only, owner=owner)

    def ticks(self, price: Decimal, side: Side) -> int:
        """``price`` in ticks on the protective side: a buy's down, a sell's up."""
        return steps(price, self.config.tick_size, round_up=side is Side.SELL)

    def _limit(self, side: Side, quote: Decimal, lots_or_base: Decimal) -> int:
        """The limit in ticks at which ``lots_or_base`` base trades for ``quote``, fees in."""
        rate = Decimal(self.taker_fee) / FEE_DENOMINATOR
        if side is Side.BUY:
            return steps(quote / (lots_or_base * (1 + rate)), self.config.tick_size)
        return steps(quote / (lots_or_base * (1 - rate)), self.config.tick_size, round_up=True)


def step_order(
    venue: str, markets: Mapping[str, Market], step: ExecutionStep
) -> tuple[Market, OrderRequest]:
    """The IOC order that carries out ``step`` (see the module's table).  Raises
    ``OrderError`` for what no book can do (wrong venue or market, less than a lot)."""
    if step.venue != venue or any(leg.venue != venue for leg in step.legs):
        raise OrderError("wrong_venue", f"step {step.step_id} is not for venue {venue!r}")
    if len(step.legs) != 1:
        raise OrderError(
            "bad_route", f"a {venue} step trades in one market, this one has {len(step.legs)} legs"
        )
    leg = step.legs[0]
    market = markets.get(leg.pool_id)
    if market is None:
        raise OrderError("unknown_market", f"{venue} has no market {leg.pool_id!r}")
    pair = {market.base.symbol, market.quote.symbol}
    if {step.asset_in, step.asset_out} != pair or (leg.token_in, leg.token_out) != (
        step.asset_in,
        step.asset_out,
    ):
        raise OrderError(
            "bad_route",
            f"market {market.market_id} trades "
            f"{market.base.symbol}/{market.quote.symbol}, not "
            f"{step.asset_in}->{step.asset_out}",
        )
    lot = market.config.lot_size
    ioc = TimeInForce.IOC
    if step.asset_in == market.base.symbol:  # selling base for quote
        qty = steps(step.amount_in if step.mode is SwapMode.EXACT_IN else step.max_in, lot)
        if qty <= 0:
            raise OrderError("below_lot", f"step {step.step_id} sells less than one lot ({lot})")
        wanted = step.min_out if step.mode is SwapMode.EXACT_IN else step.amount_out
        target = (
            None
            if step.mode is SwapMode.EXACT_IN
            else to_units(step.amount_out, market.quote.decimals, round_up=True)
        )
        if step.limit_price is not None and step.mode is SwapMode.EXACT_IN:
            floor = to_units(step.min_out, market.quote.decimals)
            return market, OrderRequest(
                Side.SELL,
                qty,
                market.ticks(step.limit_price, Side.SELL),
                OrderType.LIMIT,
                ioc,
                average_limit=floor if floor > 0 else None,
            )
        if wanted <= 0:
            return market, OrderRequest(
                Side.SELL, qty, None, OrderType.MARKET, ioc, quote_limit=target
            )
        limit = market._limit(Side.SELL, wanted, qty * lot)
        return market, OrderRequest(Side.SELL, qty, limit, OrderType.LIMIT, ioc, quote_limit=target)
    # buying base with quote
    average = None
    if step.mode is SwapMode.EXACT_OUT:
        qty = steps(step.amount_out, lot, round_up=True)
        budget = to_units(step.max_in, market.quote.decimals)
        if step.limit_price is not None:
            limit, average = market.ticks(step.limit_price, Side.BUY), budget
        else:
            limit = market._limit(Side.BUY, step.max_in, qty * lot)
    else:
        budget = to_units(step.amount_in, market.quote.decimals)
        qty = budget // market.unit  # what the budget buys at one tick: a cap never reached
        limit = market._limit(Side.BUY, step.amount_in, step.min_out) if step.min_out > 0 else 0
        if step.min_out <= 0 and qty > 0:
            return market, OrderRequest(
                Side.BUY, qty, None, OrderType.MARKET, ioc, quote_limit=budget
            )
    if qty <= 0 or budget <= 0:
        raise OrderError("below_lot", f"step {step.step_id} buys less than one lot ({lot})")
    if limit <= 0:
        raise OrderError(
            "slippage", f"step {step.step_id}'s bound is below one tick ({market.config.tick_size})"
        )
    return market, OrderRequest(
        Side.BUY, qty, limit, OrderType.LIMIT, ioc, quote_limit=budget, average_limit=average
    )


@dataclass(frozen=True)
class OrderInfo:
    """An order as the order-book interface reports it (human units)."""

    order_ref: str
    client_order_id: str | None
    market_id: str
    side: Side
    status: str
    """``pending`` (not in the book yet), ``open``, ``filled``, ``cancelled``, ``rejected``."""
    qty: Decimal
    price: Decimal | None
    filled_qty: Decimal
    notional: Decimal
    fee: Decimal
    reason: str | None = None
    detail: str | None = None


def info_of(order_ref: str, record: OrderRecord, market: Market) -> OrderInfo:
    request = record.request
    return OrderInfo(
        order_ref=order_ref,
        client_order_id=record.client_order_id,
        market_id=record.market_id,
        side=request.side,
        status="pending" if record.status is None else record.status.value,
        qty=market.size(request.qty),
        price=None if request.price is None else market.price(request.price),
        filled_qty=market.size(record.filled_qty),
        notional=market.quote_amount(record.notional),
        fee=market.quote_amount(record.fee),
        reason=record.reason,
        detail=record.detail,
    )
