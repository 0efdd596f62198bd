"""Opening a SQLite file several worker processes share (venue ledgers and journals).

Switching a database to WAL needs a moment of exclusive access, and SQLite reports a busy
database *at once* for that pragma instead of waiting its busy timeout.  Two workers that
start together then crash their venue's start with "database is locked" (measured in the
restart tests).  ``connect_shared`` retries the opening pragmas until ``timeout_s``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

RETRY_PAUSE_S = 0.05


def connect_shared(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A connection in WAL mode (``synchronous=NORMAL``, autocommit) with a busy timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(RETRY_PAUSE_S)
        except BaseException:
            db.close()
            raise
