"""The backtest's driver: market data through the same stages, on a simulated clock, in memory.

    data file --MarketEvent, in time order--> Tape
      each event:  clock := event time
                   the record --> the strategy runner's processor only
                   its submissions, if any --> the sim venue's pools := the market's latest
                                               (every state up to this millisecond)
                                           --> every stage until idle (ingest ... execute,
                                               fills back to the strategy runner)
      end:         every topic's events --stable order--> the event log

A market event is a moment: the sim venue's pools are at that event's states, the strategies
see it, and what they submit runs through every stage at that moment, before the next
market event.  The venue's pools are only written when something trades (``_sync_venue``):
nothing else reads them, so writing them at every event would change nothing but speed.

Latency (``plugins.venues.sim.config.latency_ms``): a receipt waits until the simulated
clock reaches its due time (``wait_until``): the market states up to then are applied to the
venue's pools first (the fill sees the market moved during the latency), and the clock jumps
there.  The strategies see those market events afterwards, in order (their clock is the
event's time, which may then be behind the stages' clock by up to the latency).

Deterministic: no wall clock, no randomness (order refs come from ``next_id``: the seed, the
clock and a counter), a single-threaded event loop with no I/O waits, so the same data,
topology, settings and seed give the same events in the same order, byte for byte.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from pipeline.backtest.clock import SimClock
from pipeline.backtest.data import POOLS_TOPIC, MarketEvent
from pipeline.backtest.setup import RUNNER, as_sim, event_topics
from pipeline.config import Settings
from pipeline.ids import deterministic_ulid
from pipeline.models.market import PoolState
from pipeline.plugins.manager import build_venues
from pipeline.plugins.venue import ReplaysMarket, routing_of
from pipeline.runtime.delivery.memory import MemoryRuntime, build_memory_runtime
from pipeline.stages.base import Output, Record
from pipeline.stages.strategy_runner import StrategyRunnerStage
from pipeline.topology.models import Topology

PROGRESS_EVERY = 2048
"""Market events between two progress reports."""


class Tape:
    """The data, read once, with two cursors: the strategies' (``next``) and the venue's,
    which may run ahead while a receipt waits out the latency (``advance_venue``)."""

    def __init__(self, events: Iterable[MarketEvent]) -> None:
        self._events: Iterator[MarketEvent] = iter(events)
        self._ahead: deque[MarketEvent] = deque()
        """Events the venue has taken and the strategies have not seen yet."""
        self._peeked: MarketEvent | None = None
        self.venue_pending: dict[bytes, MarketEvent] = {}
        """The latest pool record per key that the venue has not taken yet."""

    def _read(self) -> MarketEvent | None:
        if self._peeked is not None:
            peeked, self._peeked = self._peeked, None
            return peeked
        event = next(self._events, None)
        return None if event is None else as_sim(event)

    def _take(self, event: MarketEvent) -> None:
        if event.topic == POOLS_TOPIC:
            self.venue_pending[event.key] = event

    def next(self) -> MarketEvent | None:
        """The next event for the strategies (the venue has it by then)."""
        if self._ahead:
            return self._ahead.popleft()
        event = self._read()
        if event is not None:
            self._take(event)
        return event

    def peek_at(self) -> int | None:
        """When the next event for the strategies is (``None``: no more), taking nothing."""
        if self._ahead:
            return self._ahead[0].at_ms
        if self._peeked is None:
            self._peeked = self._read()
        return None if self._peeked is None else self._peeked.at_ms

    def advance_venue(self, until_ms: float) -> None:
        """Let the venue take every event up to ``until_ms``; the strategies get them later."""
        while (event := self._read()) is not None:
            if event.at_ms > until_ms:
                self._peeked = event
                return
            self._take(event)
            self._ahead.append(event)


class BacktestTime:
    """The ``SimulatedTime`` the venues get: the clock, latency waits, deterministic ids."""

    def __init__(self, clock: SimClock, seed: int) -> None:
        self.clock = clock
        self.seed = str(seed)
        self._counter = 0
        self.before_wait: Callable[[float], object] | None = None
        """Set by the driver: bring the venues' market up to a time (async)."""

    def now_ms(self) -> float:
        return self.clock.ms()

    async def wait_until(self, due_ms: float) -> None:
        if due_ms > self.clock.ms() and self.before_wait is not None:
            await self.before_wait(due_ms)  # type: ignore[misc]
        self.clock.advance_to(due_ms)

    def next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{deterministic_ulid(self.clock(), self.seed, prefix, str(self._counter))}"


class _RunHeap:
    """Garbage collection for a run whose objects mostly live to its end.

    What exists before the run (modules, pydantic's schemas, the venues: ~120,000 objects)
    and the records a run keeps for its event log (~18 an intent) are not garbage, yet the
    collector's automatic passes scanned them again and again: ~10 % of a backtest's CPU,
    for ~0.7 cyclic objects found per intent.  So during the run the collector only runs
    here: every ``COLLECT_EVERY`` intents (or ``MARKET_EVERY`` market events) it collects
    what is new and freezes the survivors out of later passes, so each object is scanned
    about once.  At the end it is unfrozen and back on: nothing stays uncollectable.
    """

    COLLECT_EVERY = 2_000
    MARKET_EVERY = 100_000

    def __init__(self) -> None:
        self._enabled = gc.isenabled()
        gc.disable()
        gc.freeze()
        self._intents = self._events = 0

    def step(self, intents: int) -> None:
        """One step of the run went through (a market event, or a given submission), with
        ``intents`` submitted in it."""
        self._intents += intents
        self._events += 1
        if self._intents >= self.COLLECT_EVERY or self._events >= self.MARKET_EVERY:
            self._intents = self._events = 0
            gc.collect()
            gc.freeze()

    def release(self) -> None:
        gc.unfreeze()
        if self._enabled:
            gc.enable()


@dataclass
class BacktestResult:
    events: list[bytes]
    """Every event, in the log's order, as its wire JSON."""
    market_events: int
    submissions: int
    seconds: float
    cpu_seconds: float
    """The process's CPU time over the run (what the run cost whatever the machine's load;
    ``seconds`` is the wall clock)."""
    first_ms: int | None
    last_ms: int | None
    fatal: BaseException | None = None
    counts: dict[str, int] = field(default_factory=dict)
    """Events by type."""


def event_order(record: Record) -> tuple[int, str, int, str]:
    """The log's order: time, then intent, then ``seq`` (one intent's events in order)."""
    head = orjson.loads(record.value)
    return (record.timestamp_ms, head.get("correlationId", ""), head.get("seq", 0), record.topic)


class Backtest:
    """One run of ``topology`` (made by ``backtest_topology``) over ``events``."""

    def __init__(
        self,
        topology: Topology,
        events: Iterable[MarketEvent],
        work_dir: Path,
        *,
        seed: int = 0,
        start_ms: int = 0,
        progress: Callable[[int], None] | None = None,
        drive_venue: bool = True,
        submissions: Iterable[tuple[int, bytes, bytes]] = (),
        max_splits: int | None = None,
    ) -> None:
        """The strategies are the topology's (``plugins.strategies``; several instances of
        one plugin under their own ids: ``{dca-1: {plugin: dca, config: ...}}``).
        ``drive_venue=False``: the sim venue's pools start at the data's first states and
        then move only by its own fills (the market left out).
        ``submissions``: ``(at_ms, key, value)`` records for ``sep.intents.submitted``, in
        time order, fed at their time after the market events before it (a counterfactual
        replay of stored intents).  ``max_splits``: every venue's routing allows that many
        split paths (a counterfactual setting, ``plan.max_splits``)."""
        if (work_dir / "venues").exists():
            # A venue's ledger there would carry on from its traded state: not this run.
            raise FileExistsError(f"{work_dir} holds venue state of another run; use an empty one")
        self.topology = topology
        self.tape = Tape(events)
        self.clock = SimClock(start_ms)
        self.time = BacktestTime(self.clock, seed)
        self.time.before_wait = self._catch_up
        # The runner drops what strategies submit on a market update older than the lag
        # limit (a live runner catching up on history must not trade on the past).  A
        # backtest is the past by design, and its strategies hear an update at most the sim
        # venue's latency after the stages' clock moved: no limit.
        self.settings = Settings(data_dir=work_dir, strategy_max_lag_ms=2**62)
        self.progress = progress
        self.venues = build_venues(topology, work_dir, simulated=self.time)
        if max_splits is not None:
            for venue in self.venues.values():
                # The planner reads each venue's declared routing once, when it is built.
                venue.routing = replace(routing_of(venue), max_splits=max_splits)  # type: ignore[attr-defined]
        self._submissions = deque(submissions)
        self._heap: _RunHeap | None = None
        """The garbage collection of the run under way (``run``)."""
        self.runtime: MemoryRuntime
        stages = [s.name for s in topology.stages]
        self.runtime, self.lifecycle = build_memory_runtime(
            topology,
            self.settings,
            stages,
            clock=self.clock,
            venues=self.venues,
            keep_changelogs=False,
        )
        self._replaying = (
            [v for v in self.venues.values() if isinstance(v, ReplaysMarket)] if drive_venue else []
        )
        (self.runner,) = [
            p for p in self.lifecycle.processors if isinstance(p, StrategyRunnerStage)
        ]

    async def _catch_up(self, until_ms: float) -> None:
        """The venue's pools at the market as of ``until_ms``: every state up to then, those
        of the same millisecond included (the strategies may have reacted to the first of
        several pools moving at one moment; the venue trades at the whole moment's market)."""
        self.tape.advance_venue(until_ms)
        await self._sync_venue()

    async def _sync_venue(self) -> None:
        pending = self.tape.venue_pending
        if not pending:
            return
        states = [PoolState.model_validate_json(e.value) for e in pending.values()]
        pending.clear()
        for venue in self._replaying:
            await venue.set_pools(states)

    async def _submit_until(self, before_ms: int | None) -> None:
        """Feed the given submissions due before ``before_ms`` (all: ``None``), each at its
        time, through every stage."""
        topic = self.topology.stage(RUNNER).events_topic
        while self._submissions and (before_ms is None or self._submissions[0][0] < before_ms):
            at_ms, key, value = self._submissions.popleft()
            self.clock.advance_to(at_ms)
            self.runtime.topics.append(topic, key, value, timestamp_ms=at_ms)
            await self._catch_up(self.clock())
            await self.runtime.run_until_idle()
            if self._heap is not None:
                self._heap.step(1)

    async def run(self) -> BacktestResult:
        runtime = self.runtime
        topics = runtime.topics
        runner = self.runner
        reads = frozenset(self.topology.stage(RUNNER).inputs)
        emitted: list[Output] = []

        async def emit(output: Output) -> None:
            emitted.append(output)

        started, cpu_started = time.perf_counter(), time.process_time()
        first: int | None = None
        last: int | None = None
        count = submissions = 0
        await self.lifecycle.ensure_started()
        heap = self._heap = _RunHeap()
        try:
            while True:
                if self._submissions:
                    # Given submissions go in before the next market event is taken (the
                    # venue would take it with it).
                    await self._submit_until(self.tape.peek_at())
                if (event := self.tape.next()) is None:
                    break
                if first is None:
                    first = event.at_ms
                last = event.at_ms
                self.clock.advance_to(event.at_ms)
                # The market record goes to the strategy runner's processor directly, the
                # one stage that reads it: a record a pass through the group runner (offset
                # ledger, stats, an empty scan of every other group) costs ~4x the stage's
                # own work, and only what the strategies submit needs the other stages.
                if event.topic in reads:  # books are kept in data files; no stage reads them
                    record = Record(event.topic, 0, count, event.at_ms, event.key, event.value)
                    await runner.process((record,), emit)
                count += 1
                heap.step(len(emitted))
                if emitted:
                    for output in emitted:
                        topics.append(output.topic, output.key, output.value, None, output.headers)
                    submissions += len(emitted)
                    emitted.clear()
                    await self._catch_up(self.clock())
                    await runtime.run_until_idle()
                    if runtime.fatal is not None:
                        break
                if self.progress is not None and count % PROGRESS_EVERY == 0:
                    self.progress(count)
            await self._submit_until(None)
            await runtime.run_until_idle()
        finally:
            heap.release()
            self._heap = None
            await self.lifecycle.stop()
        if self.progress is not None:
            self.progress(count)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        records = [r for t in event_topics(self.topology) for r in topics.log.get(t, [])]
        records.sort(key=event_order)
        counts: dict[str, int] = {}
        for r in records:
            kind = orjson.loads(r.value)["topic"]
            counts[kind] = counts.get(kind, 0) + 1
        return BacktestResult(
            events=[r.value for r in records],
            market_events=count,
            submissions=submissions,
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            first_ms=first,
            last_ms=last,
            fatal=runtime.fatal,
            counts=counts,
        )


def write_event_log(path: Path, events: Iterable[bytes]) -> int:
    """The event log: one event's JSON per line, in the given order; how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("wb") as out:
        for value in events:
            out.write(value)
            out.write(b"\n")
            n += 1
    return n
