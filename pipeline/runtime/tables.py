"""A faust table as the small ``StageTable`` interface the stage functions use.

Why not ``table[key] = value``: faust picks the changelog partition from the *current event*,
and inside a ``take()`` batch that is the batch's last event, not the record being handled.
Writing the local store and the changelog explicitly, to the record's own partition, keeps
each key in the changelog partition of the input partition it came from (co-partitioned),
so recovery after a rebalance finds it.
"""

from __future__ import annotations

from typing import Any

from pipeline.stages.base import Record


class FaustTableAdapter:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> str | None:
        value = self._table.get(key)
        return None if value is None else str(value)

    def set(self, key: str, value: str, record: Record) -> None:
        self._table.data[key] = value
        self._table.send_changelog(record.partition, key, value)

    def delete(self, key: str, partition: int) -> None:
        self._table.data.pop(key, None)
        # A null value is a tombstone: compaction drops the key, recovery deletes it.
        self._table.send_changelog(partition, key, None, value_serializer="raw")

    def held_keys(self) -> list[str]:
        return list(self._table.data.keys())

    def __len__(self) -> int:
        return len(self._table)
