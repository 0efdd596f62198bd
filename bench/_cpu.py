"""Where the CPU goes during a benchmark: seconds of CPU per process group, from /proc.

On one machine the workers share the cores with the broker, the stores and the load
generator, so "intents/s" alone hides what limits it.  ``CpuMeter`` reads every process's
user+system time before and after a run and groups it: our worker processes (by pid), Kafka
(``java``), PostgreSQL, Redis, the chain (``anvil``), this process (the load generator and the
measurement), kernel threads (disk writeback for the logs and fsyncs) and anything else.
Linux only; elsewhere it reports nothing.

A fresh broker's JVM compiles its hot paths (its C1/C2 compiler threads) for its first minutes
of traffic, at up to half a core on this machine: that start-up cost is reported on its own as
``kafka JIT`` (taken out of ``kafka``), so a run on a cold broker shows it, and a benchmark can
warm the broker until it is quiet (``jit_cores``).

Other people's runs share this machine, often with a broker and a database of their own: by
name alone their ``java`` would be charged to our Kafka.  Given ``services`` (the pids that
listen on this run's service ports, from ``service_pids``), a process counts for a service only
when it is one of those or descends from one (PostgreSQL's backends are the postmaster's
children); a same-named process outside them is ``other``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BY_NAME = {"java": "kafka", "postgres": "postgres", "redis-server": "redis", "anvil": "chain"}
_KERNEL_PREFIXES = ("kworker", "ksoftirqd", "jbd2", "kswapd", "kcompactd", "rcu_", "kdamond")


def _read() -> dict[int, tuple[str, int, int]]:
    """pid -> (command name, CPU ticks so far, parent pid)."""
    out: dict[int, tuple[str, int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        # After the name: state, ppid, ..., utime (12th), stime (13th).
        fields = text[text.rindex(")") + 2 :].split()
        out[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]), int(fields[1]))
    return out


_JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
"""The JVM's compiler threads, as the kernel names them (15 characters)."""


def _jit_ticks(pid: int) -> int:
    """CPU ticks so far of process ``pid``'s JIT compiler threads (0 if it has ended)."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        try:
            if (task / "comm").read_text().rstrip("\n") in _JIT_THREADS:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
        except OSError:  # the thread or process ended meanwhile
            continue
    return ticks


def _listening_inodes(ports: Collection[int]) -> set[str]:
    """Socket inodes listening on any of ``ports`` (TCP over IPv4 or IPv6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st ... uid timeout inode
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) in ports:
                inodes.add(fields[9])
    return inodes


def service_pids(urls: Mapping[str, str]) -> dict[int, str]:
    """Group name -> URL (``{"kafka": "127.0.0.1:9092", "postgres": "postgresql://..."}``) ->
    ``{pid: group}`` of the local processes listening on those URLs' ports.  A service on
    another host has no pid here; its CPU is not on this machine either."""
    by_port: dict[int, str] = {}
    for group, url in urls.items():
        for one in url.split(","):  # a bootstrap list: host:port,host:port
            port = urlsplit(one if "//" in one else f"//{one}").port
            if port is not None:
                by_port[port] = group
    found: dict[int, str] = {}
    for port, group in by_port.items():
        wanted = {f"socket:[{inode}]" for inode in _listening_inodes({port})}
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            try:
                if any(os.readlink(fd) in wanted for fd in fd_dir.iterdir()):
                    found[int(fd_dir.parent.name)] = group
            except OSError:  # ended meanwhile, or not ours to read
                continue
    return found


def _service_of(
    pid: int, procs: Mapping[int, tuple[str, int, int]], services: Mapping[int, str]
) -> str | None:
    seen = 0
    while pid > 1 and seen < 64:  # a parent chain, bounded against a pid reused mid-read
        if pid in services:
            return services[pid]
        pid = procs[pid][2] if pid in procs else 0
        seen += 1
    return None


def group_of(
    pid: int, name: str, workers: Collection[int], service: str | None = None, by_name: bool = True
) -> str:
    if pid in workers:
        return "workers"
    if pid == os.getpid():
        return "load generator"
    if service is not None:
        return service
    if by_name and name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith(_KERNEL_PREFIXES):
        return "kernel"
    return "other"


@dataclass
class CpuMeter:
    """``start()`` then ``stop()``: CPU seconds per group in between."""

    workers: Collection[int] = ()
    services: Mapping[int, str] = field(default_factory=dict)
    """pid -> group of the service processes (``service_pids``); empty: groups by name."""
    window: float = 0.0
    """Wall seconds from ``start()`` to ``stop()``: what "cores busy" divides by."""
    _before: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    _jit_before: dict[int, int] = field(default_factory=dict)
    _started: float = 0.0

    def _brokers(self, procs: Mapping[int, tuple[str, int, int]]) -> list[int]:
        if self.services:
            return [pid for pid, group in self.services.items() if group == "kafka"]
        return [pid for pid, (name, _ticks, _parent) in procs.items() if name == "java"]

    def start(self) -> None:
        self._before = _read()
        self._jit_before = {pid: _jit_ticks(pid) for pid in self._brokers(self._before)}
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        procs = _read()
        self.window = time.monotonic() - self._started
        for pid, (name, ticks, _parent) in procs.items():
            before = self._before.get(pid)
            # The same process if its time did not go backwards: a kernel worker renames
            # itself by the work it does ("kworker/0:1-events" -> "...-mm_percpu_wq"), and
            # counting all its ticks since boot as this run's showed 12 "cores busy" on two.
            # (A pid reused within a run starts from zero ticks: fewer than before.)
            used = ticks - before[1] if before and ticks >= before[1] else ticks
            if used > 0:
                service = _service_of(pid, procs, self.services) if self.services else None
                group = group_of(pid, name, self.workers, service, by_name=not self.services)
                seconds[group] = seconds.get(group, 0.0) + used / _TICKS
        jit = sum(_jit_ticks(pid) - before for pid, before in self._jit_before.items())
        if jit > 0 and "kafka" in seconds:
            jit_s = min(jit / _TICKS, seconds["kafka"])
            seconds["kafka"] -= jit_s
            seconds["kafka JIT"] = jit_s
        return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


def jit_cores(seconds_by_group: Mapping[str, float], window: float) -> float:
    """Cores the broker's JIT compiler took over a ``CpuMeter`` window (0: a warm broker)."""
    return seconds_by_group.get("kafka JIT", 0.0) / window if window > 0 else 0.0
