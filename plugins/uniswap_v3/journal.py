"""The venue's durable journal: every signed transaction, recorded *before* it is sent.

One SQLite file in the venue's data directory. A row holds the step id, the nonce, the tx
hash and the signed raw transaction, so after a crash anywhere between signing and the
receipt:

* ``lookup(step_id)`` finds the submission and the executor waits for it instead of sending
  the step again;
* a transaction that never reached the node is re-broadcast byte for byte (same hash, same
  nonce): no second transaction, and no nonce gap.

Nonces are allocated here too (``record``), inside ``BEGIN IMMEDIATE``: the next nonce of a
signer is ``max(journal's next, floor)`` where the floor is the node's pending count, so
processes sharing the file never hand out one nonce twice and a restart carries on after
the last signed transaction, sent or not. The signed raw transaction is public once sent;
no key material is stored.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.plugins.sqlite import connect_shared

BUSY_TIMEOUT_MS = 10_000

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS txs (
        seq INTEGER PRIMARY KEY,
        step_id TEXT NOT NULL,
        step TEXT,
        signer TEXT NOT NULL,
        nonce INTEGER NOT NULL,
        tx_hash TEXT NOT NULL UNIQUE,
        raw_tx BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('signed', 'sent', 'rejected')),
        reason TEXT,
        detail TEXT,
        created_ms REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS txs_step ON txs (step_id, seq)",
    "CREATE TABLE IF NOT EXISTS nonces (signer TEXT PRIMARY KEY, next INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class TxRecord:
    step_id: str
    step_json: str | None
    """The ``ExecutionStep`` as JSON (``None`` for the venue's own approvals)."""
    signer: str
    nonce: int
    tx_hash: str
    raw_tx: bytes
    status: str
    """``signed`` (maybe not on the node yet), ``sent`` (the node took it), or ``rejected``
    (the node refused it; ``reason``/``detail`` say why; it will never be mined)."""
    reason: str | None
    detail: str | None


Signer = Callable[[int], tuple[str, bytes]]
"""Signs the transaction with the given nonce: returns (tx hash 0x-hex, raw bytes)."""


class Journal:
    """One process's connection to the journal file. Not shared between threads."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Journal:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect_shared(path, BUSY_TIMEOUT_MS / 1000)
        try:
            db.row_factory = sqlite3.Row
            # FULL, not NORMAL: the row must survive a power cut too, or a restarted venue
            # could sign another transaction with a nonce already on the chain.
            db.execute("PRAGMA synchronous = FULL")
            for statement in _SCHEMA:
                db.execute(statement)
        except BaseException:
            db.close()
            raise
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def record(
        self,
        step_id: str,
        step_json: str | None,
        signer: str,
        floor: int,
        sign: Signer,
        *,
        once: bool = False,
    ) -> tuple[TxRecord, bool]:
        """Allocate the signer's next nonce, sign with it, and store the transaction; and
        whether it is new.

        Committed before this returns: the caller sends only what is recorded.  ``once``
        (a swap step): if the step already has a transaction the node has not refused, that
        one is returned and nothing is signed, so two processes that both looked the step up
        before either recorded it (two workers running one plan across a rebalance) make one
        transaction, not two trades.
        """
        with self._immediate() as db:
            claimed = (
                db.execute(
                    "SELECT * FROM txs WHERE step_id = ? AND status != 'rejected' "
                    "ORDER BY seq DESC LIMIT 1",
                    (step_id,),
                ).fetchone()
                if once
                else None
            )
            if claimed is not None:
                return _record(claimed), False
            row = db.execute("SELECT next FROM nonces WHERE signer = ?", (signer,)).fetchone()
            nonce = max(floor, row["next"] if row else 0)
            tx_hash, raw = sign(nonce)
            db.execute(
                "INSERT INTO txs (step_id, step, signer, nonce, tx_hash, raw_tx, status, "
                "created_ms) VALUES (?, ?, ?, ?, ?, ?, 'signed', ?)",
                (step_id, step_json, signer, nonce, tx_hash, raw, time.time() * 1000),
            )
            db.execute(
                "INSERT INTO nonces (signer, next) VALUES (?, ?) ON CONFLICT (signer) "
                "DO UPDATE SET next = excluded.next",
                (signer, nonce + 1),
            )
        return TxRecord(step_id, step_json, signer, nonce, tx_hash, raw, "signed", None, None), True

    def mark_sent(self, tx_hash: str) -> None:
        self._db.execute(
            "UPDATE txs SET status = 'sent' WHERE tx_hash = ? AND status = 'signed'", (tx_hash,)
        )

    def mark_rejected(self, record: TxRecord, reason: str, detail: str) -> None:
        """The node refused the transaction: it will never be mined, so its nonce is free
        again unless a later one was handed out meanwhile (then the gap is the node's to
        report, and ``floor`` resynchronises the next allocation)."""
        with self._immediate() as db:
            db.execute(
                "UPDATE txs SET status = 'rejected', reason = ?, detail = ? WHERE tx_hash = ?",
                (reason, detail, record.tx_hash),
            )
            db.execute(
                "UPDATE nonces SET next = ? WHERE signer = ? AND next = ?",
                (record.nonce, record.signer, record.nonce + 1),
            )

    def latest(self, step_id: str) -> TxRecord | None:
        """The transaction for ``step_id``: the one not refused by the node if there is one
        (a refused send is retried with a fresh nonce), else the last refused one."""
        row = self._db.execute(
            "SELECT * FROM txs WHERE step_id = ? ORDER BY status = 'rejected', seq DESC LIMIT 1",
            (step_id,),
        ).fetchone()
        return None if row is None else _record(row)

    def get(self, tx_hash: str) -> TxRecord | None:
        row = self._db.execute("SELECT * FROM txs WHERE tx_hash = ?", (tx_hash,)).fetchone()
        return None if row is None else _record(row)

    def unsent(self, signer: str) -> list[TxRecord]:
        """Transactions signed but not known to have reached the node, by nonce."""
        rows = self._db.execute(
            "SELECT * FROM txs WHERE signer = ? AND status = 'signed' ORDER BY nonce", (signer,)
        ).fetchall()
        return [_record(r) for r in rows]

    def count(self, step_id: str) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM txs WHERE step_id = ?", (step_id,)).fetchone()
        return int(n)


def _record(row: sqlite3.Row) -> TxRecord:
    return TxRecord(
        row["step_id"],
        row["step"],
        row["signer"],
        row["nonce"],
        row["tx_hash"],
        bytes(row["raw_tx"]),
        row["status"],
        row["reason"],
        row["detail"],
    )
