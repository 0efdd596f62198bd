"""The faust table adapter against a real faust table (its changelog sends are queued in the
producer's buffer, which is what the worker flushes to the broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.runtime.tables import FaustTableAdapter
from pipeline.runtime.worker import build_worker_app
from pipeline.stages.base import Record
from pipeline.stages.table_names import PLAN_DECISIONS
from pipeline.topology import load_topology


def queued(app: Any) -> list[Any]:
    pending = app.producer.buffer.pending
    return [pending.get_nowait().message for _ in range(pending.qsize())]


async def test_set_and_delete_write_the_changelog_partition_of_the_record(
        tmp_path: Path) -> None:
    app = build_worker_app(load_topology(), Settings(data_dir=tmp_path))
    table = app.tables[PLAN_DECISIONS]
    adapter = FaustTableAdapter(table)
    record = Record("sep.intents.prioritised", 5, 42, 0, b"intent-a", b"{}")

    adapter.set("intent-a", "remembered", record)
    assert adapter.get("intent-a") == "remembered"
    assert list(adapter.held_keys()) == ["intent-a"]
    (written,) = queued(app)
    assert (written.partition, written.value) == (5, b"\"remembered\"")  # JSON, as faust reads it

    adapter.delete("intent-a", 5)
    assert adapter.get("intent-a") is None
    assert list(adapter.held_keys()) == []
    (tombstone,) = queued(app)
    # A null value: compaction drops the key and recovery deletes it.
    assert (tombstone.partition, tombstone.value) == (5, None)
    assert tombstone.key == written.key
