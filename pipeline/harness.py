"""Run the pipeline's workers as child processes and watch intents finish.

Shared by ``sep up``, the end-to-end tests and the benchmarks, so all three run the pipeline
the way production does: separate worker processes against real services.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from pipeline.config import Settings
from pipeline.runtime.lane_workers import ROUTINE_NICENESS
from pipeline.runtime.orphan import PARENT_ENV
from pipeline.store.readmodel import TERMINAL_STATES

TERMINAL_TOPICS = (
    "intent.rejected",
    "risk.rejected",
    "plan.rejected",
    "exec.completed",
    "exec.failed",
    "intent.expired",
    "intent.cancelled",
)


def service_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(
        os.environ,
        SEP_KAFKA=settings.kafka,
        SEP_POSTGRES=settings.postgres,
        SEP_REDIS=settings.redis,
        SEP_DATA=str(settings.data_dir),
        SEP_REDIS_PREFIX=settings.redis_prefix,
        SEP_RPC=settings.rpc,
        SEP_DEPLOYMENT=str(settings.deployment),
        SEP_LOG_FORMAT="json",
        SEP_MODE=settings.mode,
    )
    env.update(extra or {})
    return env


@dataclass
class WorkerPool:
    """N identical worker processes (one consumer group); kill, stop and restart them."""

    settings: Settings
    count: int = 2
    loglevel: str = "info"
    layout: tuple[str, ...] = ()
    """Stages per process, e.g. ("ingest,validate,prioritise,plan,execute", "project");
    empty: ``count`` identical processes running every stage."""
    extra_env: dict[str, str] = field(default_factory=dict)
    name: str = "worker"
    """Log files are ``<data>/logs/<name>-<i>.log`` (two pools in one data dir: two names)."""
    singletons: tuple[str, ...] = ()
    """Singleton stages (``topology.singleton_stages``), each in one more process of its
    own (``--stages <name>``, log ``<data>/logs/<name>-<stage>.log``): the workers above
    never run them.  ``sep up`` passes the topology's; tests that do not need the strategy
    runner leave it out."""
    lanes: tuple[str, ...] = ()
    """Dedicated lanes (``lanes.dedicated``), each in one more process of its own
    (``--lane <name>``, log ``<data>/logs/<name>-lane-<lane>.log``, last).  With any, every
    other process of the pool runs ``niceness`` lower in priority (see
    ``pipeline.runtime.lane_workers``)."""
    niceness: int = ROUTINE_NICENESS
    """How much lower the other processes' priority is when ``lanes`` is set."""
    command: tuple[str, ...] = (sys.executable, "-m", "pipeline.cli.main", "worker")
    """What each process runs, before ``--loglevel`` and ``--stages``: ``sep worker``, or
    e.g. a profiler wrapping it (the supervisor's tests use a trivial child)."""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    generation: int = 0
    _argvs: list[list[str]] = field(default_factory=list, repr=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def slot_name(self, slot: int) -> str:
        regular = self.regular_slots
        if slot >= regular + len(self.singletons):
            return f"{self.name}-lane-{self.lanes[slot - regular - len(self.singletons)]}"
        if self.singletons and slot >= regular:
            return f"{self.name}-{self.singletons[slot - regular]}"
        return f"{self.name}-{slot}"

    def lane_slot(self, lane: str) -> int:
        """The slot of ``lane``'s process."""
        return self.regular_slots + len(self.singletons) + self.lanes.index(lane)

    def singleton_slot(self, stage: str) -> int:
        """The slot of ``stage``'s process (to kill or restart it on its own)."""
        return self.regular_slots + self.singletons.index(stage)

    @property
    def regular_slots(self) -> int:
        return len(self.layout) or self.count

    def log_file(self, slot: int) -> Path:
        return self.log_dir / f"{self.slot_name(slot)}.log"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Each worker stops by itself if this process dies without stopping it (orphan.py).
        self._env = service_env(self.settings, {**self.extra_env, PARENT_ENV: str(os.getpid())})
        self.generation += 1
        groups: list[str | None] = list(self.layout) or [None] * self.count
        groups += list(self.singletons)
        selections = [["--stages", stages] if stages else [] for stages in groups]
        selections += [["--lane", lane] for lane in self.lanes]
        for selection in selections:
            slot = len(self.procs)
            self._argvs.append([*self.command, "--loglevel", self.loglevel, *selection])
            self.procs.append(self._spawn(slot, f"generation {self.generation}"))

    def respawn(self, slot: int) -> subprocess.Popen[bytes]:
        """Start ``slot``'s process again, as it was started (it must have exited)."""
        old = self.procs[slot]
        if old.poll() is None:
            raise RuntimeError(f"{self.slot_name(slot)} still runs (pid {old.pid})")
        self.procs[slot] = self._spawn(slot, f"generation {self.generation}, restarted")
        return self.procs[slot]

    def _spawn(self, slot: int, banner: str) -> subprocess.Popen[bytes]:
        with self.log_file(slot).open("ab") as out:
            out.write(f"\n--- {banner} ---\n".encode())
            out.flush()
            # The child keeps its own copy of the descriptor; ours closes here.
            routine = bool(self.lanes) and slot < self.lane_slot(self.lanes[0])
            niceness = self.niceness if routine else 0
            return subprocess.Popen(
                self._argvs[slot],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Before exec, so every thread the worker starts inherits it.
                preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
            )

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM (graceful: faust commits and leaves the group), SIGKILL after timeout."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        self.procs.clear()
        self._argvs.clear()
        return codes

    def kill(self) -> None:
        """SIGKILL every worker: no commit, no goodbye (the crash case)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs.clear()
        self._argvs.clear()

    def request_state_dump(self) -> None:
        """Ask every worker to log its consumer state (SIGUSR1, see runtime.diagnostics)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGUSR1)

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.log_dir.glob(f"{self.name}-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(parts)


async def group_offsets(kafka: str) -> dict[str, dict[str, tuple[int, int]]]:
    """For every consumer group: ``"topic/partition" -> (committed offset, end offset)``."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    try:
        await admin.start()
        await consumer.start()
        result: dict[str, dict[str, tuple[int, int]]] = {}
        for group, _protocol in await admin.list_consumer_groups():
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed))
            result[group] = {
                f"{tp.topic}/{tp.partition}": (meta.offset, ends[tp])
                for tp, meta in sorted(committed.items())
            }
        return result
    finally:
        await consumer.stop()
        await admin.close()


async def skip_backlog(
    kafka: str, group: str, partitions: Mapping[str, int], *, within_s: float = 30.0
) -> None:
    """Commit ``group``'s offsets at the end of every topic (``name -> partitions``).

    A new group then starts from now.

    Worker groups start from the earliest offset (nothing may be missed in production); a
    test that runs a new process layout against a broker other tests already used would
    otherwise replay all their traffic first.

    The broker refuses the commit while the group still has members (workers an earlier test
    killed stay members until their session times out, ~6 s): it is retried until they are
    gone, for up to ``within_s``.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline.runtime.handover import commit_offsets

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, count in partitions.items() for p in range(count)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    offsets = {(tp.topic, tp.partition): end for tp, end in ends.items()}
    await commit_offsets(kafka, group, offsets, within_s=within_s)


async def group_lag(settings: Settings) -> str:
    """Which partitions each group has not committed to the end: for a timeout's message."""
    try:
        groups = await group_offsets(settings.kafka)
    except Exception as exc:  # a diagnostic must not hide the timeout it explains
        return f"(could not read group offsets: {exc!r})"
    lines = []
    for group, offsets in groups.items():
        behind = {tp: f"{c}/{e}" for tp, (c, e) in offsets.items() if c < e}
        lines.append(f"group {group}: partitions behind (committed/end): {behind or 'none'}")
    return "\n".join(lines)


async def terminal_events(conn: asyncpg.Connection, intent_ids: Iterable[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT correlation_id, topic FROM events WHERE correlation_id = ANY($1::text[]) "
        "AND topic = ANY($2::text[])",
        list(intent_ids),
        list(TERMINAL_TOPICS),
    )
    return {r["correlation_id"]: r["topic"] for r in rows}


async def wait_until_finished(
    dsn: str,
    intent_ids: Iterable[str],
    timeout: float,  # noqa: ASYNC109 - the budget is named in the error it raises
    pool: WorkerPool | None = None,
    poll: float = 0.25,
) -> dict[str, str]:
    """Wait until every intent has a terminal event in the store; return id -> topic.

    Raises ``TimeoutError`` naming how many are still open (and the workers' log tail).
    """
    wanted = set(intent_ids)
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            done = await terminal_events(conn, wanted)
            if len(done) >= len(wanted):
                return done
            if pool is not None and pool.procs and not pool.alive():
                raise RuntimeError(
                    f"a worker exited while {len(wanted) - len(done)} intents "
                    f"were open\n{pool.log_tail()}"
                )
            if time.monotonic() > deadline:
                lag = await group_lag(pool.settings) if pool else ""
                if pool:
                    pool.request_state_dump()
                    await asyncio.sleep(1.0)
                tail = pool.log_tail() if pool else ""
                stuck = sorted(wanted - set(done))
                last = await conn.fetch(
                    "SELECT DISTINCT ON (correlation_id) correlation_id, seq, topic FROM events "
                    "WHERE correlation_id = ANY($1::text[]) ORDER BY correlation_id, seq DESC",
                    stuck,
                )
                where = {r["correlation_id"]: f"{r['topic']}#{r['seq']}" for r in last}
                sample = ", ".join(f"{i}: {where.get(i, 'no events')}" for i in stuck[:10])
                raise TimeoutError(
                    f"{len(stuck)} of {len(wanted)} intents not finished after "
                    f"{timeout:.0f}s; last events: {sample}\n{lag}\n{tail}"
                )
            await asyncio.sleep(poll)
    finally:
        await conn.close()


__all__ = [
    "TERMINAL_STATES",
    "TERMINAL_TOPICS",
    "WorkerPool",
    "group_offsets",
    "service_env",
    "skip_backlog",
    "wait_until_finished",
]
