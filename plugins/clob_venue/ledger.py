"""A clob venue's durable ledger: markets, orders and fills in one SQLite file.

The ledger is the truth; each process's matching engines are a cache of its open orders.
Every change runs in ``BEGIN IMMEDIATE`` (the write lock taken up front) and bumps the
ledger's ``version``; a process whose cache was built at another version reloads the open
orders first (``ClobVenue._sync``), so several workers on one file see one book.

Client order ids are unique (a venue that dedupes them, as exchanges do): placing an order
with a client id the ledger has returns the order it has.  ``fill_counts`` still counts, per
client order id, the *orders* that filled, so a double execution (two orders for one step)
would show as a 2 -- the same check as the sim venue's.

Each market row keeps ``seq``, its book's version (bumped by every transaction that changed
its book: a fill, an order resting or cancelled, a maker refresh), which the book messages
carry; and ``maker_epoch``, the last maker refresh done, so only one process does each.

Amounts in quote base units (notionals, fees, quote limits) are TEXT: they exceed 64 bits.
Prices (ticks) and quantities (lots) are INTEGERs.  Times are milliseconds as REAL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.plugins.sqlite import connect_shared
from plugins.clob_venue.engine import (
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    RestingOrder,
    Side,
    TimeInForce,
)

SCHEMA_VERSION = 2
"""2: ``orders.average_limit`` (a ledger of schema 1 is migrated on open)."""
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS markets (
        market_id TEXT PRIMARY KEY, base TEXT NOT NULL, quote TEXT NOT NULL,
        tick_size TEXT NOT NULL, lot_size TEXT NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0, maker_epoch INTEGER NOT NULL DEFAULT -1)""",
    """CREATE TABLE IF NOT EXISTS orders (
        order_id INTEGER PRIMARY KEY,
        market_id TEXT NOT NULL REFERENCES markets (market_id),
        client_order_id TEXT UNIQUE,
        owner TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        order_type TEXT NOT NULL, tif TEXT NOT NULL, post_only INTEGER NOT NULL,
        price INTEGER, qty INTEGER NOT NULL, quote_limit TEXT, average_limit TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'open', 'filled', 'cancelled',
                                               'rejected')),
        remaining INTEGER NOT NULL, priority INTEGER,
        filled_qty INTEGER NOT NULL DEFAULT 0, notional TEXT NOT NULL DEFAULT '0',
        fee TEXT NOT NULL DEFAULT '0', reason TEXT, detail TEXT, step TEXT,
        submitted_ms REAL NOT NULL, due_ms REAL NOT NULL, final_ms REAL)""",
    "CREATE INDEX IF NOT EXISTS orders_due ON orders (due_ms) WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS orders_open ON orders (market_id) WHERE status = 'open'",
    """CREATE TABLE IF NOT EXISTS fills (
        seq INTEGER PRIMARY KEY,
        market_id TEXT NOT NULL,
        taker_order_id INTEGER NOT NULL REFERENCES orders (order_id),
        maker_order_id INTEGER NOT NULL,
        client_order_id TEXT,
        price INTEGER NOT NULL, qty INTEGER NOT NULL, notional TEXT NOT NULL,
        taker_fee TEXT NOT NULL, maker_fee TEXT NOT NULL, filled_ms REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS fills_taker ON fills (taker_order_id)",
)


class LedgerError(Exception):
    """The ledger file cannot be used as configured (another schema, a changed market)."""


@dataclass(frozen=True)
class MarketRow:
    market_id: str
    base: str
    quote: str
    tick_size: str
    lot_size: str


@dataclass(frozen=True)
class OrderRecord:
    order_id: int
    market_id: str
    client_order_id: str | None
    owner: str
    request: OrderRequest
    status: OrderStatus | None
    """``None``: pending (not in the book yet)."""
    remaining: int
    priority: int | None
    filled_qty: int
    notional: int
    fee: int
    reason: str | None
    detail: str | None
    step_json: str | None
    submitted_ms: float
    due_ms: float

    @property
    def final(self) -> bool:
        return self.status in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


def _record(row: sqlite3.Row) -> OrderRecord:
    request = OrderRequest(
        side=Side(row["side"]),
        qty=row["qty"],
        price=row["price"],
        order_type=OrderType(row["order_type"]),
        tif=TimeInForce(row["tif"]),
        post_only=bool(row["post_only"]),
        quote_limit=None if row["quote_limit"] is None else int(row["quote_limit"]),
        owner=row["owner"],
        average_limit=None if row["average_limit"] is None else int(row["average_limit"]),
    )
    status = None if row["status"] == "pending" else OrderStatus(row["status"])
    return OrderRecord(
        order_id=row["order_id"],
        market_id=row["market_id"],
        client_order_id=row["client_order_id"],
        owner=row["owner"],
        request=request,
        status=status,
        remaining=row["remaining"],
        priority=row["priority"],
        filled_qty=row["filled_qty"],
        notional=int(row["notional"]),
        fee=int(row["fee"]),
        reason=row["reason"],
        detail=row["detail"],
        step_json=row["step"],
        submitted_ms=row["submitted_ms"],
        due_ms=row["due_ms"],
    )


class Ledger:
    """One process's connection to the ledger file. Not shared between threads."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path, markets: Sequence[MarketRow]) -> Ledger:
        """Open (creating if needed) the ledger at ``path``; add markets it lacks, and refuse
        a market whose assets, tick or lot differ from the file's (its orders are in them)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect_shared(path, BUSY_TIMEOUT_MS / 1000)
        try:
            db.row_factory = sqlite3.Row
            ledger = cls(db, path)
            ledger._initialise(markets)
        except BaseException:
            db.close()
            raise
        return ledger

    def close(self) -> None:
        self._db.close()

    def fail_when_locked(self) -> None:
        """Raise at once while another process holds the write lock (the venue retries
        asynchronously rather than sleep in SQLite's busy handler, on the event loop)."""
        self._db.execute("PRAGMA busy_timeout = 0")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _initialise(self, markets: Sequence[MarketRow]) -> None:
        with self.transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)
            for key, value in (
                ("schema_version", SCHEMA_VERSION),
                ("version", 0),
                ("next_order_id", 1),
            ):
                self._db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, str(value))
                )
            stored = self._meta("schema_version")
            if stored == 1:  # before average limits: the column is added, empty
                self._db.execute("ALTER TABLE orders ADD COLUMN average_limit TEXT")
                self._set_meta("schema_version", SCHEMA_VERSION)
                stored = SCHEMA_VERSION
            if stored != SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path} has ledger schema {stored}, this venue writes {SCHEMA_VERSION}"
                )
            for market in markets:
                row = self._db.execute(
                    "SELECT base, quote, tick_size, lot_size FROM markets WHERE market_id = ?",
                    (market.market_id,),
                ).fetchone()
                wanted = (market.base, market.quote, market.tick_size, market.lot_size)
                if row is None:
                    self._db.execute(
                        "INSERT INTO markets (market_id, base, quote, tick_size, "
                        "lot_size) VALUES (?, ?, ?, ?, ?)",
                        (market.market_id, *wanted),
                    )
                elif tuple(row) != wanted:
                    raise LedgerError(
                        f"{self.path}: market {market.market_id!r} is {tuple(row)} (base, quote, "
                        f"tick, lot) in the ledger but {wanted} in the configuration; its "
                        "orders are in the old units: delete the ledger to start it again"
                    )

    def _meta(self, key: str) -> int:
        return int(
            self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()["value"]
        )

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("UPDATE meta SET value = ? WHERE key = ?", (str(value), key))

    # ------------------------------------------------------------------------- reads

    def version(self) -> int:
        return self._meta("version")

    def next_order_id(self) -> int:
        return self._meta("next_order_id")

    def market_state(self, market_id: str) -> tuple[int, int]:
        """``(seq, maker_epoch)``."""
        row = self._db.execute(
            "SELECT seq, maker_epoch FROM markets WHERE market_id = ?", (market_id,)
        ).fetchone()
        return int(row["seq"]), int(row["maker_epoch"])

    def open_orders(self, market_id: str) -> list[RestingOrder]:
        rows = self._db.execute(
            "SELECT * FROM orders WHERE status = 'open' AND market_id = ? ORDER BY priority",
            (market_id,),
        )
        return [
            RestingOrder(
                r["order_id"],
                Side(r["side"]),
                r["price"],
                r["qty"],
                r["remaining"],
                r["owner"],
                r["priority"],
            )
            for r in rows
        ]

    def due(self, now_ms: float) -> list[OrderRecord]:
        """Pending orders due by ``now_ms``, in the order they reach the book."""
        rows = self._db.execute(
            "SELECT * FROM orders WHERE status = 'pending' AND due_ms <= ? "
            "ORDER BY due_ms, order_id",
            (now_ms,),
        )
        return [_record(r) for r in rows]

    def order(self, order_id: int) -> OrderRecord | None:
        row = self._db.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else _record(row)

    def order_by_client_id(self, client_order_id: str) -> OrderRecord | None:
        row = self._db.execute(
            "SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
        return None if row is None else _record(row)

    def fills(self) -> list[sqlite3.Row]:
        """Every fill, in commit order (rows with the table's columns)."""
        return self._db.execute("SELECT * FROM fills ORDER BY seq").fetchall()

    def fill_counts(self) -> dict[str, int]:
        """Per client order id, how many orders filled. Above 1: a step executed twice."""
        rows = self._db.execute(
            "SELECT client_order_id, COUNT(DISTINCT taker_order_id) FROM fills "
            "WHERE client_order_id IS NOT NULL GROUP BY client_order_id"
        )
        return {client_id: count for client_id, count in rows}

    def total_fills(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM fills").fetchone()
        return int(count)

    # ------------------------------------------------------------------------- writes
    # (inside ``transaction()``; the venue calls them in the order things happen)

    def bump_version(self) -> int:
        version = self.version() + 1
        self._set_meta("version", version)
        return version

    def set_next_order_id(self, value: int) -> None:
        self._set_meta("next_order_id", value)

    def bump_market(self, market_id: str) -> None:
        self._db.execute("UPDATE markets SET seq = seq + 1 WHERE market_id = ?", (market_id,))

    def set_maker_epoch(self, market_id: str, epoch: int) -> None:
        self._db.execute(
            "UPDATE markets SET maker_epoch = ? WHERE market_id = ?", (epoch, market_id)
        )

    def insert_order(
        self,
        order_id: int,
        market_id: str,
        request: OrderRequest,
        *,
        client_order_id: str | None,
        submitted_ms: float,
        due_ms: float,
        step_json: str | None = None,
    ) -> None:
        """A pending order: it reaches the book at ``due_ms`` (``record_result``)."""
        self._db.execute(
            "INSERT INTO orders (order_id, market_id, client_order_id, owner, side, order_type, "
            "tif, post_only, price, qty, quote_limit, average_limit, status, remaining, step, "
            "submitted_ms, due_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (
                order_id,
                market_id,
                client_order_id,
                request.owner,
                request.side.value,
                request.order_type.value,
                request.tif.value,
                int(request.post_only),
                request.price,
                request.qty,
                None if request.quote_limit is None else str(request.quote_limit),
                None if request.average_limit is None else str(request.average_limit),
                request.qty,
                step_json,
                submitted_ms,
                due_ms,
            ),
        )

    def record_result(
        self, market_id: str, result: OrderResult, client_order_id: str | None, now_ms: float
    ) -> None:
        """What matching did to an order, its trades and their makers."""
        resting = result.resting
        self._db.execute(
            "UPDATE orders SET status = ?, remaining = ?, priority = ?, filled_qty = ?, "
            "notional = ?, fee = ?, reason = ?, detail = ?, final_ms = ? WHERE order_id = ?",
            (
                result.status.value,
                resting.remaining if resting else 0,
                resting.priority if resting else None,
                result.filled_qty,
                str(result.notional),
                str(result.fee),
                result.reason,
                result.detail,
                None if result.status is OrderStatus.OPEN else now_ms,
                result.order_id,
            ),
        )
        for trade in result.trades:
            # Notionals and fees exceed 64 bits (TEXT): summed here, not in SQL.
            maker = self._db.execute(
                "SELECT remaining, notional, fee FROM orders WHERE order_id = ?",
                (trade.maker_order_id,),
            ).fetchone()
            left = maker["remaining"] - trade.qty
            self._db.execute(
                "UPDATE orders SET remaining = ?, filled_qty = filled_qty + ?, notional = ?, "
                "fee = ?, status = ?, final_ms = ? WHERE order_id = ?",
                (
                    left,
                    trade.qty,
                    str(int(maker["notional"]) + trade.notional),
                    str(int(maker["fee"]) + trade.maker_fee),
                    "open" if left else "filled",
                    None if left else now_ms,
                    trade.maker_order_id,
                ),
            )
            self._db.execute(
                "INSERT INTO fills (market_id, taker_order_id, maker_order_id, client_order_id, "
                "price, qty, notional, taker_fee, maker_fee, filled_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    market_id,
                    trade.taker_order_id,
                    trade.maker_order_id,
                    client_order_id,
                    trade.price,
                    trade.qty,
                    str(trade.notional),
                    str(trade.taker_fee),
                    str(trade.maker_fee),
                    now_ms,
                ),
            )

    def insert_resting(self, market_id: str, order: RestingOrder, now_ms: float) -> None:
        """An order that went straight into the book (a maker's quote)."""
        self._db.execute(
            "INSERT INTO orders (order_id, market_id, owner, side, order_type, tif, post_only, "
            "price, qty, status, remaining, priority, submitted_ms, due_ms) "
            "VALUES (?, ?, ?, ?, 'limit', 'gtc', 1, ?, ?, 'open', ?, ?, ?, ?)",
            (
                order.order_id,
                market_id,
                order.owner,
                order.side.value,
                order.price,
                order.qty,
                order.remaining,
                order.priority,
                now_ms,
                now_ms,
            ),
        )

    def cancel(self, order_id: int, now_ms: float) -> None:
        """Cancel an order that is resting or has not reached the book yet."""
        self._db.execute(
            "UPDATE orders SET status = 'cancelled', remaining = 0, final_ms = ? "
            "WHERE order_id = ? AND status IN ('open', 'pending')",
            (now_ms, order_id),
        )

    def withdraw_quotes(self, order_ids: Sequence[int], now_ms: float) -> None:
        """A maker's quotes taken out: those never traded leave no row (the ledger would grow
        by every quote of every refresh); those that traded stay, cancelled, for their fills."""
        for order_id in order_ids:
            self._db.execute(
                "DELETE FROM orders WHERE order_id = ? AND filled_qty = 0", (order_id,)
            )
            self.cancel(order_id, now_ms)
