"""The sim venue's durable ledger: pools, submissions and fills in one SQLite file.

Several worker processes open the same file, so every change that reads before it writes
(settling submissions against the pools) runs in ``BEGIN IMMEDIATE``: the write lock is taken
up front and the processes see one sequence of pool states.  WAL lets readers carry on while a
writer holds the lock; ``synchronous=NORMAL`` survives a process crash (not a power cut), which
is what a paper venue needs.

Like a real venue the ledger does *not* enforce one fill per step: a client that submits the
same step twice gets two fills.  That is what makes a double execution by the pipeline
detectable (``fill_counts``).

Each pool row keeps ``seq``, the number of the last fill that moved it (fills are numbered in
commit order), so a reader can tell whether a state includes a given fill: it does when the
pool's ``seq`` is at least the fill's number (``PoolState.version``; the planner's pending
flow relies on it).

Amounts are integer base units stored as TEXT, since they exceed SQLite's 64-bit integers.
Times are milliseconds since the epoch as REAL: a double keeps sub-microsecond resolution, so
no rounding shortens (or needlessly lengthens) the simulated latency.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

from pipeline.plugins.sqlite import connect_shared
from plugins.sim_venue.amm import Pool, Swap, SwapError

SCHEMA_VERSION = 2
"""1 -> 2: ``pools.seq`` (a version-1 file is upgraded when opened)."""
BUSY_TIMEOUT_MS = 10_000
"""How long a process waits for another's write transaction before giving up."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS pools (
        pool_id TEXT PRIMARY KEY, token0 TEXT NOT NULL, token1 TEXT NOT NULL,
        reserve0 TEXT NOT NULL, reserve1 TEXT NOT NULL, fee INTEGER NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS submissions (
        seq INTEGER PRIMARY KEY,
        order_ref TEXT NOT NULL UNIQUE,
        step_id TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'filled', 'failed')),
        reason TEXT,
        detail TEXT,
        submitted_ms REAL NOT NULL,
        due_ms REAL NOT NULL,
        final_ms REAL)""",
    "CREATE INDEX IF NOT EXISTS submissions_step ON submissions (step_id)",
    "CREATE INDEX IF NOT EXISTS submissions_due ON submissions (due_ms) WHERE status = 'pending'",
    """CREATE TABLE IF NOT EXISTS fills (
        seq INTEGER PRIMARY KEY,
        step_id TEXT NOT NULL,
        order_ref TEXT NOT NULL REFERENCES submissions (order_ref),
        amount_in TEXT NOT NULL,
        amount_out TEXT NOT NULL,
        filled_ms REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS fills_order ON fills (order_ref)",
    # A paper twin's pools (``set_market``): the offset on the market topic of the state each
    # pool was last set to.  A table of its own, so an older file just gains it.
    """CREATE TABLE IF NOT EXISTS market_marks (
        pool_id TEXT PRIMARY KEY REFERENCES pools (pool_id), mark INTEGER NOT NULL)""",
)

Status = Literal["pending", "filled", "failed"]
_IN_CHUNK = 500
"""Order refs per ``IN (...)`` query (SQLite caps the parameters of one statement)."""

# The submissions to settle, in the order they run (pending ones have no fill yet).
_SELECT_DUE = """
    SELECT order_ref, step_id, step, status, submitted_ms, due_ms, seq
    FROM submissions WHERE status = 'pending' AND due_ms <= ? ORDER BY due_ms, seq
"""

# A submission joined with its fill (at most one per order_ref: only settle() inserts fills).
_SELECT_SUBMISSION = """
    SELECT s.order_ref, s.step_id, s.step, s.status, s.reason, s.detail, s.submitted_ms,
           s.due_ms, f.amount_in, f.amount_out, f.seq AS fill_seq, s.seq AS number
    FROM submissions s LEFT JOIN fills f ON f.order_ref = s.order_ref
"""


class LedgerError(Exception):
    """The ledger file cannot be used as configured (another schema, a changed pool)."""


@dataclass(frozen=True)
class SubmissionRecord:
    order_ref: str
    step_id: str
    step_json: str
    status: Status
    reason: str | None
    detail: str | None
    submitted_ms: float
    due_ms: float
    """When the simulated network makes it final: ``submitted_ms + latency_ms``."""
    amount_in: int | None
    """Base units actually spent and received, once filled."""
    amount_out: int | None
    fill_seq: int | None = None
    """The fill's number, once filled: the pools it moved have ``seq`` >= it from then on."""
    number: int | None = None
    """The submission's number in the ledger (1, 2, ... in the order they were stored)."""

    @classmethod
    def made(
        cls,
        order_ref: str,
        step_id: str,
        step_json: str,
        status: Status,
        reason: str | None,
        detail: str | None,
        submitted_ms: float,
        due_ms: float,
        amount_in: int | None,
        amount_out: int | None,
        fill_seq: int | None,
        number: int | None,
    ) -> SubmissionRecord:
        """``SubmissionRecord(...)``, its fields set as ``__init__`` sets them, without a
        frozen dataclass's ``object.__setattr__`` per field (~0.5 us of ~1.3: a batch of
        receipts makes two per submission)."""
        record = object.__new__(cls)
        record.__dict__.update(
            order_ref=order_ref,
            step_id=step_id,
            step_json=step_json,
            status=status,
            reason=reason,
            detail=detail,
            submitted_ms=submitted_ms,
            due_ms=due_ms,
            amount_in=amount_in,
            amount_out=amount_out,
            fill_seq=fill_seq,
            number=number,
        )
        return record


@dataclass(frozen=True)
class NewSubmission:
    """A submission to store (``Ledger.add_submissions``)."""

    order_ref: str
    step_id: str
    step_json: str
    submitted_ms: float
    due_ms: float


@dataclass(frozen=True)
class FillRecord:
    seq: int
    """Commit order: fills are numbered inside the write lock."""
    step_id: str
    order_ref: str
    amount_in: int
    amount_out: int
    filled_ms: float


Executor = Callable[[SubmissionRecord, Mapping[str, Pool]], Swap]
"""Runs one submission against the current pools; raises ``SwapError`` to fail it."""


def _insert_pool(db: sqlite3.Connection, pool: Pool) -> None:
    """A pool the ledger does not hold yet, at its given reserves (amounts as text: exact)."""
    db.execute(
        "INSERT INTO pools (pool_id, token0, token1, reserve0, reserve1, fee) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (pool.pool_id, pool.token0, pool.token1, str(pool.reserve0), str(pool.reserve1), pool.fee),
    )


def _record(row: tuple[Any, ...]) -> SubmissionRecord:
    """A row of ``_SELECT_SUBMISSION`` (a plain tuple: its columns are in the record's
    order, and a tuple is read faster than a ``sqlite3.Row`` by name)."""
    (order_ref, step_id, step, status, reason, detail, submitted, due, paid, got, fill, n) = row
    return SubmissionRecord.made(
        order_ref,
        step_id,
        step,
        status,
        reason,
        detail,
        submitted,
        due,
        None if paid is None else int(paid),
        None if got is None else int(got),
        fill,
        n,
    )


@dataclass
class _Ran:
    """What running due submissions came to (``Ledger._run_due``), to be stored."""

    out: dict[str, SubmissionRecord]
    """Each submission's final record, by order ref."""
    fills: list[tuple[int, str, str, str, str, float]]
    """The ``fills`` rows, in their order."""
    changed: dict[str, Pool]
    """The pools they moved, as they left them."""


_due_order = attrgetter("due_ms", "number")
"""``_SELECT_DUE``'s order: by due time, then by number (every record run has one)."""


def _row(
    new: SubmissionRecord, final: SubmissionRecord | None, now_ms: float
) -> tuple[object, ...]:
    """A new ``submissions`` row as storing it and then settling it (``final``, if it ran)
    at ``now_ms`` would leave it."""
    if final is None:
        return (
            new.number, new.order_ref, new.step_id, new.step_json, "pending", None, None,
            new.submitted_ms, new.due_ms, None,
        )  # fmt: skip
    return (
        new.number, new.order_ref, new.step_id, new.step_json, final.status, final.reason,
        final.detail, new.submitted_ms, new.due_ms, now_ms,
    )  # fmt: skip


class Ledger:
    """One process's connection to the ledger file. Not shared between threads."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path, seed: Sequence[Pool] = ()) -> Ledger:
        """Open (creating if needed) the ledger at ``path`` and seed pools it does not have yet.

        A pool already in the file keeps its traded reserves: a restarted venue carries on
        where it stopped.  Delete the file to start again from the configured reserves.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; we say BEGIN IMMEDIATE ourselves.
        db = connect_shared(path, BUSY_TIMEOUT_MS / 1000)
        try:
            db.row_factory = sqlite3.Row
            ledger = cls(db, path)
            ledger._initialise(seed)
        except BaseException:
            db.close()
            raise
        return ledger

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """Open an existing ledger only to read it (``sep status``, tests): creates nothing."""
        if not path.is_file():
            raise LedgerError(f"no sim venue ledger at {path}")
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )
        db.row_factory = sqlite3.Row
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    def fail_when_locked(self) -> None:
        """Raise at once while another process holds the write lock, instead of waiting in
        SQLite's busy handler, which sleeps in the calling thread (for a worker, its whole
        event loop).  The caller retries asynchronously (``SimVenue``)."""
        self._db.execute("PRAGMA busy_timeout = 0")

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite may already have rolled back on its own
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _initialise(self, seed: Sequence[Pool]) -> None:
        # One transaction, so processes starting together create and seed exactly once.
        with self._immediate() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            stored = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[
                "value"
            ]
            if stored == "1":  # its pools have no seq yet: no fill is counted in them
                db.execute("ALTER TABLE pools ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
                )
                stored = str(SCHEMA_VERSION)
            if stored != str(SCHEMA_VERSION):
                raise LedgerError(
                    f"{self.path} has ledger schema {stored}, this venue writes {SCHEMA_VERSION}"
                )
            for pool in seed:
                row = db.execute(
                    "SELECT token0, token1, fee FROM pools WHERE pool_id = ?", (pool.pool_id,)
                ).fetchone()
                if row is None:
                    _insert_pool(db, pool)
                elif tuple(row) != (pool.token0, pool.token1, pool.fee):
                    raise LedgerError(
                        f"{self.path}: pool {pool.pool_id!r} is {row['token0']}/{row['token1']} "
                        f"fee {row['fee']} in the ledger but {pool.token0}/{pool.token1} fee "
                        f"{pool.fee} in the configuration; delete the ledger to reseed it"
                    )

    # ------------------------------------------------------------------------- reads

    def pools(self) -> dict[str, Pool]:
        rows = self._db.execute("SELECT * FROM pools").fetchall()
        # A version-1 file opened read-only (``sep status`` before a worker upgraded it)
        # has no seq column.  (``in`` on a ``sqlite3.Row`` looks at its values.)
        has_seq = bool(rows) and "seq" in rows[0].keys()  # noqa: SIM118 - see above
        return {
            r["pool_id"]: Pool(
                r["pool_id"],
                r["token0"],
                r["token1"],
                int(r["reserve0"]),
                int(r["reserve1"]),
                r["fee"],
                r["seq"] if has_seq else 0,
            )
            for r in rows
        }

    def _tuples(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """``sql``'s rows as plain tuples (the connection's rows are ``sqlite3.Row``s)."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, parameters)

    def submission(self, order_ref: str) -> SubmissionRecord | None:
        row = self._tuples(_SELECT_SUBMISSION + " WHERE s.order_ref = ?", (order_ref,)).fetchone()
        return None if row is None else _record(row)

    def first_submission(self, step_id: str) -> SubmissionRecord | None:
        """The earliest submission of ``step_id`` (there may be more: see the module doc)."""
        row = self._tuples(
            _SELECT_SUBMISSION + " WHERE s.step_id = ? ORDER BY s.seq LIMIT 1", (step_id,)
        ).fetchone()
        return None if row is None else _record(row)

    def first_submissions(self, step_ids: Iterable[str]) -> dict[str, SubmissionRecord]:
        """``first_submission`` of each step id that has one, by step id: one query."""
        ids = list(dict.fromkeys(step_ids))
        out: dict[str, SubmissionRecord] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            rows = self._tuples(
                _SELECT_SUBMISSION
                + f" WHERE s.step_id IN ({', '.join('?' * len(chunk))}) ORDER BY s.seq",
                chunk,
            )
            for row in rows:
                if row[1] not in out:
                    out[row[1]] = _record(row)
        return out

    def fills(self) -> list[FillRecord]:
        """Every fill, in commit order."""
        rows = self._db.execute("SELECT * FROM fills ORDER BY seq").fetchall()
        return [
            FillRecord(
                r["seq"],
                r["step_id"],
                r["order_ref"],
                int(r["amount_in"]),
                int(r["amount_out"]),
                r["filled_ms"],
            )
            for r in rows
        ]

    def fill_counts(self) -> dict[str, int]:
        """Fills per step id. Any count above 1 is a step the pipeline executed twice."""
        rows = self._db.execute("SELECT step_id, COUNT(*) FROM fills GROUP BY step_id")
        return {step_id: count for step_id, count in rows}

    def total_fills(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM fills").fetchone()
        return int(count)

    # ------------------------------------------------------------------------- writes

    def set_reserves(self, reserves: Sequence[tuple[str, int, int]]) -> None:
        """Move pools to new reserves, ``(pool_id, reserve0, reserve1)`` each, in one
        transaction: the market moved them (a backtest replaying pool states,
        ``pipeline.backtest``).  ``seq`` is kept: the state is the market's, and every fill
        counted so far is behind it.  An unknown pool is an error (``LedgerError``)."""
        if not reserves:
            return
        with self._immediate() as db:
            for pool_id, reserve0, reserve1 in reserves:
                if reserve0 <= 0 or reserve1 <= 0:
                    raise LedgerError(f"pool {pool_id!r}: reserves must be positive")
                cursor = db.execute(
                    "UPDATE pools SET reserve0 = ?, reserve1 = ? WHERE pool_id = ?",
                    (str(reserve0), str(reserve1), pool_id),
                )
                if cursor.rowcount != 1:
                    raise LedgerError(f"{self.path}: no pool {pool_id!r} to move")

    def set_market(self, states: Sequence[tuple[Pool, int]]) -> int:
        """Take the market's pool states, each with its mark (its record's offset on the
        market topic), in one transaction; how many were taken.

        A state is taken only if its mark is above the pool's last one: every worker of a
        paper stack follows the same topic and hands over the same states, and the second
        copy of a state must not undo the fills made since the first (our trades' impact
        lasts until the pool's *next* market state, as in a backtest).  A pool not in the
        ledger joins with the state's tokens and fee.  ``seq`` is kept, as in
        ``set_reserves``."""
        taken = 0
        with self._immediate() as db:
            marks = dict(db.execute("SELECT pool_id, mark FROM market_marks").fetchall())
            for pool, mark in states:
                if pool.reserve0 <= 0 or pool.reserve1 <= 0:
                    raise LedgerError(f"pool {pool.pool_id!r}: reserves must be positive")
                last = marks.get(pool.pool_id)
                if last is not None and mark <= last:
                    continue
                cursor = db.execute(
                    "UPDATE pools SET reserve0 = ?, reserve1 = ? WHERE pool_id = ?",
                    (str(pool.reserve0), str(pool.reserve1), pool.pool_id),
                )
                if cursor.rowcount != 1:
                    _insert_pool(db, pool)
                db.execute(
                    "INSERT INTO market_marks (pool_id, mark) VALUES (?, ?) "
                    "ON CONFLICT (pool_id) DO UPDATE SET mark = excluded.mark",
                    (pool.pool_id, mark),
                )
                marks[pool.pool_id] = mark
                taken += 1
        return taken

    def market_marks(self) -> dict[str, int]:
        """Each paper pool's mark: the offset of the market state it was last set to."""
        return dict(self._db.execute("SELECT pool_id, mark FROM market_marks").fetchall())

    def add_submission(
        self, order_ref: str, step_id: str, step_json: str, *, submitted_ms: float, due_ms: float
    ) -> None:
        self.add_submissions([NewSubmission(order_ref, step_id, step_json, submitted_ms, due_ms)])

    def add_submissions(self, submissions: Sequence[NewSubmission], *, once: bool = False) -> None:
        """Store submissions in one transaction, in the order given (their ``seq`` order).

        ``once``: skip those whose order ref is already stored (several processes making the
        same submission, ``plugins.sim_venue.flow``); else that is an error."""
        if not submissions:
            return
        with self._immediate():
            self._insert_submissions(submissions, once=once)

    def _insert_submissions(self, submissions: Sequence[NewSubmission], *, once: bool) -> None:
        self._db.executemany(
            f"INSERT {'OR IGNORE ' if once else ''}INTO submissions (order_ref, step_id, "
            "step, status, submitted_ms, due_ms) VALUES (?, ?, ?, 'pending', ?, ?)",
            [(s.order_ref, s.step_id, s.step_json, s.submitted_ms, s.due_ms) for s in submissions],
        )

    def add_and_settle(
        self, submissions: Sequence[NewSubmission], now_ms: float, execute: Executor
    ) -> dict[str, SubmissionRecord]:
        """``add_submissions`` then ``settle_many`` at ``now_ms``, in one transaction; the
        final records of the submissions this settled (those given are among them when they
        are due by ``now_ms``), by order ref.

        For submissions due as they are stored (a venue without latency): every due
        submission runs in ``settle_many``'s order, and a crash leaves all or none of it, as
        it would leave two transactions -- for one commit per batch, not two.

        The given submissions are run before they are stored and stored as they end, each
        row as storing then settling it would leave it (the number SQLite would give it, its
        final status): an insert per row, not an insert, a read back of the row and an
        update (which rewrote it, step text and all) -- ~40 % of the batch's ledger time."""
        if not submissions:
            return {}
        with self._immediate() as db:
            # Numbered as SQLite numbers a row without one: one more than the largest so far.
            (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM submissions").fetchone()
            new = [
                SubmissionRecord.made(
                    s.order_ref,
                    s.step_id,
                    s.step_json,
                    "pending",
                    None,
                    None,
                    s.submitted_ms,
                    s.due_ms,
                    None,
                    None,
                    None,
                    last + i,
                )
                for i, s in enumerate(submissions, 1)
            ]
            stored = self._due(now_ms)  # another process's, or stored before and due now
            # ``_SELECT_DUE``'s order: by due time, then number (a clock can step back).
            due = sorted([*stored, *(r for r in new if r.due_ms <= now_ms)], key=_due_order)
            ran = self._run_due(due, now_ms, execute)
            db.executemany(
                "INSERT INTO submissions (seq, order_ref, step_id, step, status, reason, detail, "
                "submitted_ms, due_ms, final_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(r, ran.out.get(r.order_ref), now_ms) for r in new],
            )
            if stored:
                self._store_outcomes([ran.out[r.order_ref] for r in stored], now_ms)
            self._store_fills(ran)
            return ran.out

    def submissions(self, order_refs: Iterable[str]) -> dict[str, SubmissionRecord]:
        """The records of ``order_refs`` that exist, by order ref."""
        refs = list(dict.fromkeys(order_refs))
        out: dict[str, SubmissionRecord] = {}
        for i in range(0, len(refs), _IN_CHUNK):
            chunk = refs[i : i + _IN_CHUNK]
            rows = self._tuples(
                _SELECT_SUBMISSION + f" WHERE s.order_ref IN ({', '.join('?' * len(chunk))})", chunk
            )
            for row in rows:
                out[row[0]] = _record(row)
        return out

    def settle(self, order_ref: str, now_ms: float, execute: Executor) -> SubmissionRecord | None:
        """Make every submission due by ``now_ms`` final, then return ``order_ref``'s record."""
        return self.settle_many([order_ref], now_ms, execute).get(order_ref)

    def _pending(self, order_refs: Sequence[str]) -> bool:
        """Whether any of ``order_refs`` is pending (an index look-up per ref, no join)."""
        for i in range(0, len(order_refs), _IN_CHUNK):
            chunk = order_refs[i : i + _IN_CHUNK]
            found = self._db.execute(
                "SELECT 1 FROM submissions WHERE status = 'pending' AND order_ref IN "
                f"({', '.join('?' * len(chunk))}) LIMIT 1",
                chunk,
            ).fetchone()
            if found is not None:
                return True
        return False

    def settle_many(
        self, order_refs: Sequence[str], now_ms: float, execute: Executor
    ) -> dict[str, SubmissionRecord]:
        """Make every submission due by ``now_ms`` final, then return the records of
        ``order_refs`` (those that exist).

        Due submissions run in due order whichever process submitted them, as a block would
        include them; each sees the pools the previous one left.  One transaction: the fills,
        the reserves and the statuses change together or not at all.  A submission that is
        already final is returned as recorded and never runs again.  (One call for all the
        receipts a worker waits for at one moment: a transaction per receipt was a third of
        the execute stage's CPU.)
        """
        refs = list(dict.fromkeys(order_refs))
        if not self._pending(refs):
            return self.submissions(refs)  # the fast path needs no write lock
        settled: dict[str, SubmissionRecord] = {}
        with self._immediate():
            due = self._due(now_ms)
            if due:
                settled = self._settle_due(due, now_ms, execute)
        # What this transaction made final is known without reading it back (the record as
        # ``submissions`` would read it); a ref it did not settle (not due yet, or settled by
        # another process in between) is read.
        rest = [ref for ref in refs if ref not in settled]
        out = self.submissions(rest) if rest else {}
        for ref in refs:
            if ref in settled:
                out[ref] = settled[ref]
        return out

    def _due(self, now_ms: float) -> list[SubmissionRecord]:
        """Every submission pending and due by ``now_ms``, in the order they run."""
        return [
            SubmissionRecord.made(
                ref, step, text, status, None, None, at, due_ms, None, None, None, n
            )
            for ref, step, text, status, at, due_ms, n in self._tuples(_SELECT_DUE, (now_ms,))
        ]

    def _settle_due(
        self, due: Sequence[SubmissionRecord], now_ms: float, execute: Executor
    ) -> dict[str, SubmissionRecord]:
        """Run ``due`` (stored, pending) in order, inside the caller's write transaction;
        their final records (as ``submissions`` would read them back), by order ref."""
        ran = self._run_due(due, now_ms, execute)
        self._store_fills(ran)
        self._store_outcomes(ran.out.values(), now_ms)
        return ran.out

    def _run_due(self, due: Sequence[SubmissionRecord], now_ms: float, execute: Executor) -> _Ran:
        """Run ``due`` in order against the pools, inside the caller's write transaction:
        their final records and fills, and the pools they moved (stored by the caller).

        Each statement is run once for all the rows it writes: a statement per fill was most
        of a transaction's cost.  The fills' numbers are given, not left to SQLite: under the
        write lock they are what it would give (one more than the largest so far, in order),
        and each must be known as the fills go, to be the version of the pools it moved."""
        db = self._db
        pools = self.pools()
        (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills").fetchone()
        ran = _Ran({}, [], {})
        for pending in due:
            ref = pending.order_ref
            try:
                swap = execute(pending, pools)
            except SwapError as exc:
                ran.out[ref] = SubmissionRecord.made(
                    ref,
                    pending.step_id,
                    pending.step_json,
                    "failed",
                    exc.reason,
                    exc.detail,
                    pending.submitted_ms,
                    pending.due_ms,
                    None,
                    None,
                    None,
                    pending.number,
                )
                continue
            last += 1
            ran.fills.append(
                (last, pending.step_id, ref, str(swap.amount_in), str(swap.amount_out), now_ms)
            )
            # The fill's number is now the version of every pool it moved.
            for pool_id, p in swap.pools.items():
                moved = Pool(p.pool_id, p.token0, p.token1, p.reserve0, p.reserve1, p.fee, last)
                pools[pool_id] = ran.changed[pool_id] = moved
            ran.out[ref] = SubmissionRecord.made(
                ref,
                pending.step_id,
                pending.step_json,
                "filled",
                None,
                None,
                pending.submitted_ms,
                pending.due_ms,
                swap.amount_in,
                swap.amount_out,
                last,
                pending.number,
            )
        return ran

    def _store_fills(self, ran: _Ran) -> None:
        """``ran``'s fills and the pools they moved (after their submissions are stored:
        a fill names its submission)."""
        if ran.fills:
            self._db.executemany(
                "INSERT INTO fills (seq, step_id, order_ref, amount_in, amount_out, filled_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ran.fills,
            )
        for pool in ran.changed.values():
            self._db.execute(
                "UPDATE pools SET reserve0 = ?, reserve1 = ?, seq = ? WHERE pool_id = ?",
                (str(pool.reserve0), str(pool.reserve1), pool.seq, pool.pool_id),
            )

    def _store_outcomes(self, records: Iterable[SubmissionRecord], now_ms: float) -> None:
        """Stored submissions made final at ``now_ms``: their status (and why one failed)."""
        filled: list[tuple[float, str]] = []
        failed: list[tuple[str | None, str | None, float, str]] = []
        for r in records:
            if r.status == "filled":
                filled.append((now_ms, r.order_ref))
            else:
                failed.append((r.reason, r.detail, now_ms, r.order_ref))
        if filled:
            self._db.executemany(
                "UPDATE submissions SET status = 'filled', final_ms = ? WHERE order_ref = ?",
                filled,
            )
        if failed:
            self._db.executemany(
                "UPDATE submissions SET status = 'failed', reason = ?, detail = ?, final_ms = ? "
                "WHERE order_ref = ?",
                failed,
            )
