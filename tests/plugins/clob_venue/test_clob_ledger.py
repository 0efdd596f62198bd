"""The clob ledger on its own: schema and market checks, fills, and the double-execution
count (orders per client order id that filled)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from plugins.clob_venue.engine import MatchingEngine, OrderRequest, Side, TimeInForce
from plugins.clob_venue.ledger import Ledger, LedgerError, MarketRow

MARKET = MarketRow("WETH-USDC", "WETH", "USDC", "0.01", "0.001")


def _trade(
    ledger: Ledger,
    engine: MatchingEngine,
    order_id: int,
    client_id: str | None,
    request: OrderRequest,
) -> None:
    with ledger.transaction():
        ledger.insert_order(
            order_id, "WETH-USDC", request, client_order_id=client_id, submitted_ms=0, due_ms=0
        )
        ledger.record_result("WETH-USDC", engine.submit(request, order_id), client_id, 0)


def test_fills_are_recorded_with_their_maker_and_counted_per_client_order(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.sqlite", [MARKET])
    engine = MatchingEngine("WETH-USDC", unit=10, taker_fee=1000)
    _trade(ledger, engine, 1, None, OrderRequest(Side.SELL, 5, 300_000))
    _trade(ledger, engine, 2, None, OrderRequest(Side.SELL, 5, 300_001))
    _trade(ledger, engine, 3, "step-1", OrderRequest(Side.BUY, 7, 300_001, tif=TimeInForce.IOC))
    assert ledger.fill_counts() == {"step-1": 1}  # one order, two trades
    assert ledger.total_fills() == 2
    maker = ledger.order(1)
    assert maker is not None
    assert (maker.filled_qty, maker.remaining, maker.notional) == (5, 0, 15_000_000)
    assert ledger.open_orders("WETH-USDC")[0].remaining == 3
    # A second order under the same client id cannot be stored: client ids are unique ...
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        _trade(ledger, engine, 4, "step-1", OrderRequest(Side.BUY, 1, 300_001, tif=TimeInForce.IOC))
    # ... and if one were, fill_counts would say so.
    with ledger.transaction():
        ledger._db.execute(
            "INSERT INTO fills (market_id, taker_order_id, maker_order_id, "
            "client_order_id, price, qty, notional, taker_fee, maker_fee, "
            "filled_ms) VALUES ('WETH-USDC', 99, 2, 'step-1', 1, 1, '1', '0', "
            "'0', 0)"
        )
    assert ledger.fill_counts() == {"step-1": 2}
    ledger.close()


def test_a_market_whose_units_changed_is_refused(tmp_path: Path) -> None:
    Ledger.open(tmp_path / "l.sqlite", [MARKET]).close()
    with pytest.raises(LedgerError, match="delete the ledger"):
        Ledger.open(
            tmp_path / "l.sqlite", [MarketRow("WETH-USDC", "WETH", "USDC", "0.05", "0.001")]
        )
    # A new market is added to an existing file.
    ledger = Ledger.open(
        tmp_path / "l.sqlite", [MARKET, MarketRow("DAI-USDC", "DAI", "USDC", "0.0001", "1")]
    )
    assert ledger.market_state("DAI-USDC") == (0, -1)
    ledger.close()


def test_a_rolled_back_transaction_leaves_nothing(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.sqlite", [MARKET])

    def failing() -> None:
        with ledger.transaction():
            ledger.insert_order(
                1,
                "WETH-USDC",
                OrderRequest(Side.BUY, 1, 1),
                client_order_id="x",
                submitted_ms=0,
                due_ms=0,
            )
            raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError, match="after the insert"):
        failing()
    assert ledger.order_by_client_id("x") is None
    ledger.close()


def test_an_average_limit_is_stored_and_a_schema_1_ledger_gains_its_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite"
    ledger = Ledger.open(path, [MARKET])
    request = OrderRequest(Side.BUY, 3, 300_000, tif=TimeInForce.IOC, average_limit=9_000_123)
    with ledger.transaction():
        ledger.insert_order(1, "WETH-USDC", request, client_order_id="s", submitted_ms=0, due_ms=5)
    stored = ledger.order(1)
    assert stored is not None
    assert stored.request == request
    ledger.close()
    # A ledger written before average limits: the column dropped, schema 1.
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE orders DROP COLUMN average_limit")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    ledger = Ledger.open(path, [MARKET])
    old = ledger.order(1)
    assert old is not None
    assert old.request.average_limit is None
    assert old.request.qty == 3
    ledger.close()
