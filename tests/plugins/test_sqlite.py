"""Opening a SQLite file another process is busy with: wait, do not fail at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from pipeline.plugins.sqlite import connect_shared


def _hold_exclusive(path: Path, seconds: float, holding: threading.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    holding.set()
    time.sleep(seconds)
    db.execute("COMMIT")
    db.close()


def test_a_file_locked_by_another_connection_is_opened_once_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    holding = threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(path, 0.5, holding))
    holder.start()
    holding.wait()
    started = time.monotonic()
    db = connect_shared(path, timeout_s=5)
    waited = time.monotonic() - started
    holder.join()
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert waited >= 0.3  # it waited for the lock rather than failing
    finally:
        db.close()


def test_a_lock_held_past_the_timeout_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    holding = threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(path, 1.5, holding))
    holder.start()
    holding.wait()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            connect_shared(path, timeout_s=0.3)
    finally:
        holder.join()
