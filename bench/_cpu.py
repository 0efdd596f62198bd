"""Where the CPU goes during a benchmark: seconds of CPU per process group, from /proc.

On one machine the workers share the cores with the broker, the stores and the load
generator, so "intents/s" alone hides what limits it.  ``CpuMeter`` reads every process's
user+system time before and after a run and groups it: our worker processes (by pid), Kafka
(``java``), PostgreSQL, Redis, the chain (``anvil``), this process (the load generator and the
measurement), kernel threads (disk writeback for the logs and fsyncs) and anything else.
Linux only; elsewhere it reports nothing.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BY_NAME = {"java": "kafka", "postgres": "postgres", "redis-server": "redis", "anvil": "chain"}
_KERNEL_PREFIXES = ("kworker", "ksoftirqd", "jbd2", "kswapd", "kcompactd", "rcu_", "kdamond")


def _read() -> dict[int, tuple[str, int]]:
    """pid -> (command name, CPU ticks so far)."""
    out: dict[int, tuple[str, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = text[text.index("(") + 1: text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        out[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))
    return out


def group_of(pid: int, name: str, workers: Collection[int]) -> str:
    if pid in workers:
        return "workers"
    if pid == os.getpid():
        return "load generator"
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith(_KERNEL_PREFIXES):
        return "kernel"
    return "other"


@dataclass
class CpuMeter:
    """``start()`` then ``stop()``: CPU seconds per group in between."""

    workers: Collection[int] = ()
    _before: dict[int, tuple[str, int]] = field(default_factory=dict)

    def start(self) -> None:
        self._before = _read()

    def stop(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for pid, (name, ticks) in _read().items():
            before = self._before.get(pid)
            used = ticks - (before[1] if before and before[0] == name else 0)
            if used > 0:
                group = group_of(pid, name, self.workers)
                seconds[group] = seconds.get(group, 0.0) + used / _TICKS
        return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))
