"""``ClobVenue``: an order-book exchange -- matching engines per market, simulated makers, and
the durable ledger -- behind the ``Venue`` protocol and an order-book interface.

Two faces:

* The ``Venue`` protocol, for the executor: ``submit(step)`` places the step as an IOC limit
  order at the step's price bound (``orders.step_order``), with the step id as its client
  order id; ``lookup(step_id)`` finds it; ``wait_receipt`` reports what filled.  Submitting
  a step twice returns the first order (client order ids are unique here, as on exchanges).
* The order-book interface: ``place_order``, ``cancel``, ``order_status`` (any order type),
  and ``books()``, each market's L2 book at its ledger version (``market.BookSource``
  publishes it).

Time is lazy: nothing runs in the background.  Every call first brings the venue up to now
(``_catch_up``): orders whose latency has passed reach the book in the order they were due,
each after the makers' refresh of its moment, then the makers refresh to now.  So whichever
worker process touches the ledger first does the work, once, under the write lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from pipeline.models.assets import Asset
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionStep, SwapMode
from pipeline.plugins.venue import Fill, StepRejected, Submission, TransientVenueError, VenueContext
from plugins.clob_venue.books import BookState, MarketInfo
from plugins.clob_venue.config import ClobVenueConfig
from plugins.clob_venue.engine import (
    MatchingEngine,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from plugins.clob_venue.ledger import BUSY_TIMEOUT_MS, Ledger, MarketRow, OrderRecord
from plugins.clob_venue.makers import ladder, refresh_epoch
from plugins.clob_venue.orders import Market, OrderError, OrderInfo, info_of, step_order

MAKER = "maker"
"""The owner of the simulated makers' quotes."""
LOCK_RETRY_FIRST_S = 0.0005
LOCK_RETRY_MAX_S = 0.01
T = TypeVar("T")


def wall_clock_ms() -> float:
    return time.time() * 1000


@dataclass
class _Txn:
    now_ms: float
    touched: set[str] = field(default_factory=set)
    """Markets whose book changed."""


class ClobVenue:
    """One clob instance (``name``: its key under ``plugins.venues``).  ``clock_ms`` (wall
    clock by default) is injectable for tests and backtests."""

    def __init__(
        self,
        name: str,
        config: ClobVenueConfig,
        context: VenueContext,
        *,
        clock_ms: Callable[[], float] = wall_clock_ms,
    ) -> None:
        self.name = name
        self.config = config
        self._assets: Mapping[str, Asset] = context.assets
        self._path = context.data_dir / config.ledger_file
        self._clock_ms = clock_ms
        self.markets: dict[str, Market] = {
            market_id: Market.of(name, market_id, market, config, context.assets)
            for market_id, market in config.markets.items()
        }
        self._ledger: Ledger | None = None
        self._engines: dict[str, MatchingEngine] = {}
        self._version: int | None = None
        """The ledger version the engines hold (``None``: reload before use)."""
        self._next_id = 1
        self._order = asyncio.Lock()

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError(f"the {self.name} venue is not started (call start() first)")
        return self._ledger

    async def start(self) -> None:
        if self._ledger is None:
            self._ledger = Ledger.open(
                self._path,
                [
                    MarketRow(
                        m.market_id,
                        m.config.base,
                        m.config.quote,
                        str(m.config.tick_size),
                        str(m.config.lot_size),
                    )
                    for m in self.markets.values()
                ],
            )
            self._ledger.fail_when_locked()
            self._version = None

    async def stop(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    # ------------------------------------------------------------------------- market data

    async def pools(self) -> list[PoolState]:
        """None: a book venue exposes books (``books``), not pools."""
        return []

    def market_infos(self) -> dict[str, MarketInfo]:
        return {market_id: m.info for market_id, m in self.markets.items()}

    async def books(self, depth: int | None = None) -> dict[str, BookState]:
        """Each market's L2 book now (ticks and lots, best first) and its version."""
        depth = self.config.book_depth if depth is None else depth

        def read(_txn: _Txn) -> dict[str, BookState]:
            out = {}
            for market_id, engine in self._engines.items():
                bids, asks = engine.levels(depth)
                seq, _epoch = self.ledger.market_state(market_id)
                out[market_id] = BookState(seq, tuple(bids), tuple(asks))
            return out

        return await self._transact(read)

    # ------------------------------------------------------------------------- Venue protocol

    async def quote(self, step: ExecutionStep) -> Decimal:
        """EXACT_IN: what ``amount_in`` buys now. EXACT_OUT: what ``amount_out`` costs now.
        Ignores the step's price bound, as the sim venue's quote does."""
        market, request = self._step_order(step)
        unbounded = OrderRequest(
            request.side,
            request.qty,
            None,
            OrderType.MARKET,
            TimeInForce.IOC,
            quote_limit=request.quote_limit,
        )
        result = await self._transact(lambda _txn: self._engines[market.market_id].quote(unbounded))
        paid, got = market.amounts(request.side, result.filled_qty, result.notional, result.fee)
        return got if step.mode is SwapMode.EXACT_IN else paid

    async def lookup(self, step_id: str) -> Submission | None:
        record = await self._retry(lambda: self.ledger.order_by_client_id(step_id))
        return None if record is None else Submission(step_id, self._ref(record.order_id))

    async def submit(self, step: ExecutionStep) -> Submission:
        """Place ``step`` as an IOC limit at its price bound; it reaches the book
        ``latency_ms`` from now.  A step already placed returns its first order."""
        market, request = self._step_order(step)
        record = await self._place(market, request, step.step_id, step.model_dump_json())
        return Submission(step.step_id, self._ref(record.order_id))

    async def wait_receipt(self, submission: Submission, timeout_s: float) -> Fill:
        """The step's fill once its order is final.  ``StepRejected`` if nothing filled
        (``unfilled``: the book had nothing within the bound) or it was refused; a partial
        fill is a ``Fill`` of what filled (its amounts are below the step's).  ``landed_at``
        is the market's book version (``seq`` on ``sep.market.books``) from which the
        published book includes the fill."""
        record, seq = await self._final(submission.order_ref, timeout_s)
        if record is None or record.client_order_id != submission.step_id:
            raise StepRejected(
                self.name,
                "unknown_order",
                f"no order {submission.order_ref!r} of step {submission.step_id!r}",
            )
        if record.status is OrderStatus.REJECTED:
            raise StepRejected(self.name, record.reason or "rejected", record.detail or "")
        if record.filled_qty == 0:
            bound = (
                "no price bound"
                if record.request.price is None
                else (f"limit {self.markets[record.market_id].price(record.request.price)}")
            )
            raise StepRejected(
                self.name,
                "unfilled",
                f"IOC {record.request.side} at {bound} "
                f"found nothing to match in {record.market_id}",
            )
        market = self.markets[record.market_id]
        paid, got = market.amounts(
            record.request.side, record.filled_qty, record.notional, record.fee
        )
        return Fill(
            step_id=submission.step_id,
            order_ref=submission.order_ref,
            amount_in=paid,
            amount_out=got,
            landed_at=seq,
            fee=market.quote_amount(record.fee),  # the taker fee, charged in quote
            fee_asset=market.quote.symbol,
        )

    def fill_counts(self) -> dict[str, int]:
        """Per client order id (step id), the orders that filled: above 1, a double execution."""
        return self.ledger.fill_counts()

    def total_fills(self) -> int:
        return self.ledger.total_fills()

    # ------------------------------------------------------------------------- order book

    async def place_order(
        self,
        market_id: str,
        side: Side,
        qty: Decimal,
        price: Decimal | None = None,
        *,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        client_order_id: str | None = None,
        owner: str = "client",
    ) -> OrderInfo:
        """Place an order; quantities round down to whole lots, prices to the tick on the
        passive side (a buy never pays more than asked, a sell never takes less).  Raises
        ``OrderError`` for what cannot be an order (unknown market, less than a lot)."""
        market = self.markets.get(market_id)
        if market is None:
            raise OrderError(
                "unknown_market",
                f"{self.name} has no market {market_id!r}; it has {sorted(self.markets)}",
            )
        request = market.request(side, qty, price, order_type, tif, post_only, owner)
        record = await self._place(market, request, client_order_id, None)
        return info_of(self._ref(record.order_id), record, market)

    async def cancel(self, order_ref: str) -> OrderInfo:
        """Cancel a resting (or not yet arrived) order; a final order is returned as it is."""
        order_id = self._order_id(order_ref)

        def cancel(txn: _Txn) -> OrderRecord | None:
            record = self.ledger.order(order_id)
            if record is not None and not record.final:
                if self._engines[record.market_id].cancel(order_id) is not None:
                    txn.touched.add(record.market_id)
                self.ledger.cancel(order_id, txn.now_ms)
                record = self.ledger.order(order_id)
            return record

        return self._info(order_ref, await self._transact(cancel))

    async def order_status(self, order_ref: str) -> OrderInfo:
        return self._info(
            order_ref,
            await self._transact(lambda _txn: self.ledger.order(self._order_id(order_ref))),
        )

    # ------------------------------------------------------------------------- internals

    def _ref(self, order_id: int) -> str:
        return f"{self.name}-{order_id}"

    def _order_id(self, order_ref: str) -> int:
        prefix, _, number = order_ref.rpartition("-")
        if prefix != self.name or not number.isdigit():
            raise OrderError("unknown_order", f"{order_ref!r} is not an order of {self.name}")
        return int(number)

    def _info(self, order_ref: str, record: OrderRecord | None) -> OrderInfo:
        if record is None:
            raise OrderError("unknown_order", f"{self.name} has no order {order_ref!r}")
        return info_of(order_ref, record, self.markets[record.market_id])

    def _step_order(self, step: ExecutionStep) -> tuple[Market, OrderRequest]:
        try:
            return step_order(self.name, self.markets, step)
        except OrderError as exc:
            raise StepRejected(self.name, exc.reason, exc.detail) from exc

    async def _place(
        self,
        market: Market,
        request: OrderRequest,
        client_order_id: str | None,
        step_json: str | None,
    ) -> OrderRecord:
        def place(txn: _Txn) -> OrderRecord:
            if client_order_id is not None:
                known = self.ledger.order_by_client_id(client_order_id)
                if known is not None:
                    return known
            order_id = self._next_id
            self._next_id += 1
            self.ledger.set_next_order_id(self._next_id)
            self.ledger.insert_order(
                order_id,
                market.market_id,
                request,
                client_order_id=client_order_id,
                submitted_ms=txn.now_ms,
                due_ms=txn.now_ms + self.config.latency_ms,
                step_json=step_json,
            )
            self._catch_up(txn)  # with no latency it reaches the book now
            record = self.ledger.order(order_id)
            assert record is not None
            return record

        return await self._transact(place)

    async def _final(self, order_ref: str, timeout_s: float) -> tuple[OrderRecord | None, int]:
        """The order once final, and its market's book version then (``seq``, as published:
        a book of that version or later includes the order's trades)."""
        order_id = self._order_id(order_ref)
        deadline = time.monotonic() + timeout_s

        def read(_txn: _Txn) -> tuple[OrderRecord | None, int]:
            record = self.ledger.order(order_id)
            seq = 0 if record is None else self.ledger.market_state(record.market_id)[0]
            return record, seq

        while True:
            record, seq = await self._transact(read)
            if record is None or record.status not in (None, OrderStatus.OPEN):
                return record, seq
            wait = (record.due_ms - self._clock_ms()) / 1000 if record.status is None else 0.05
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientVenueError(
                    self.name, "receipt_timeout", f"{order_ref} not final after {timeout_s}s"
                )
            await asyncio.sleep(max(0.0, min(wait, left)))

    async def _transact(self, action: Callable[[_Txn], T]) -> T:
        """``action`` in one ledger transaction, the venue brought up to now before it."""
        async with self._order:
            return await self._retry(lambda: self._run(action))

    def _run(self, action: Callable[[_Txn], T]) -> T:
        ledger = self.ledger
        try:
            with ledger.transaction():
                version = ledger.version()
                if version != self._version:
                    self._reload()
                self._next_id = ledger.next_order_id()
                txn = _Txn(self._clock_ms())
                self._catch_up(txn)
                changed = self._bump(txn)  # first, so that ``action`` reads the new versions
                result = action(txn)
                changed = self._bump(txn) or changed
                self._version = ledger.bump_version() if changed else version
            return result
        except BaseException:
            self._version = None  # the engines may hold what was rolled back
            raise

    def _bump(self, txn: _Txn) -> bool:
        """A new version for each market whose book changed; whether any did."""
        for market_id in sorted(txn.touched):
            self.ledger.bump_market(market_id)
        changed = bool(txn.touched)
        txn.touched.clear()
        return changed

    def _reload(self) -> None:
        self._engines = {}
        for market_id, market in self.markets.items():
            engine = MatchingEngine(
                market_id,
                unit=market.unit,
                maker_fee=self.config.maker_fee,
                taker_fee=self.config.taker_fee,
            )
            engine.restore(self.ledger.open_orders(market_id))
            self._engines[market_id] = engine

    def _catch_up(self, txn: _Txn) -> None:
        for record in self.ledger.due(txn.now_ms):
            self._refresh(record.market_id, record.due_ms, txn)
            result = self._engines[record.market_id].submit(record.request, record.order_id)
            self.ledger.record_result(record.market_id, result, record.client_order_id, txn.now_ms)
            if result.trades or result.resting is not None:
                txn.touched.add(record.market_id)
        for market_id in self.markets:
            self._refresh(market_id, txn.now_ms, txn)

    def _refresh(self, market_id: str, at_ms: float, txn: _Txn) -> None:
        """The maker's refresh due at ``at_ms``, if not done yet: withdraw its quotes and
        quote again around the reference as it saw it."""
        market = self.markets[market_id]
        spec = market.ladder
        maker = market.config.maker
        if spec is None or maker is None:
            return
        epoch = refresh_epoch(at_ms, maker.refresh_ms)
        if self.ledger.market_state(market_id)[1] >= epoch:
            return
        engine = self._engines[market_id]
        withdrawn = [o.order_id for o in engine.resting() if o.owner == MAKER]
        for order_id in withdrawn:
            engine.cancel(order_id)
        self.ledger.withdraw_quotes(withdrawn, txn.now_ms)
        seen = market.reference.price_at(epoch * maker.refresh_ms - maker.latency_ms)
        for quote in ladder(seen, market.config.tick_size, spec):
            result = engine.submit(
                OrderRequest(quote.side, quote.qty, quote.price, post_only=True, owner=MAKER),
                self._next_id,
            )
            if result.resting is not None:  # a quote that would cross a client's is left out
                self.ledger.insert_resting(market_id, result.resting, txn.now_ms)
                self._next_id += 1
        self.ledger.set_next_order_id(self._next_id)
        self.ledger.set_maker_epoch(market_id, epoch)
        txn.touched.add(market_id)

    async def _retry(self, operation: Callable[[], T]) -> T:
        """Run a ledger operation, waiting asynchronously while another process holds the
        file's write lock (SQLite's busy handler would sleep on the event loop's thread)."""
        delay = LOCK_RETRY_FIRST_S
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_RETRY_MAX_S)
