"""What every table of remembered decisions keeps in memory: entries by key, the partition
each lives in (so a revoked partition's entries are dropped), and the keys recovered since a
stage last asked.  ``ChangelogTable`` adds the changelog records it writes; ``SourcedTable``
how it rebuilds entries from its stage's events."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.stages.base import Record


class TableEntries:
    """The ``StageTable`` interface over a dict (see ``pipeline.stages.base.StageTable``)."""

    def __init__(self, name: str, topic: str, help: str) -> None:
        self.name = name
        self.topic = topic
        self.help = help
        self._data: dict[str, str] = {}
        self._partition_of: dict[str, int] = {}
        self._recovered: list[str] = []

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def set(self, key: str, value: str, record: Record) -> None:
        self._data[key] = value
        self._partition_of[key] = record.partition

    def delete(self, key: str, partition: int) -> None:
        self._data.pop(key, None)
        self._partition_of.pop(key, None)

    def held_keys(self) -> list[str]:
        return list(self._data)

    def take_recovered(self) -> list[str]:
        recovered, self._recovered = self._recovered, []
        return recovered

    def __len__(self) -> int:
        return len(self._data)

    def _recover(self, key: str, value: str, partition: int) -> None:
        """An entry read back during recovery (a stage hears of it: ``take_recovered``)."""
        self._data[key] = value
        self._partition_of[key] = partition
        self._recovered.append(key)

    def forget(self, partitions: Iterable[int]) -> int:
        """Drop the entries of partitions this worker no longer owns; how many."""
        gone = set(partitions)
        keys = [k for k, p in self._partition_of.items() if p in gone]
        for key in keys:
            self._data.pop(key, None)
            del self._partition_of[key]
        return len(keys)
