"""The Kafka runtime: one consumer per worker for every input of its stage groups.

    getmany (all input partitions) ─► FetchBatch in the ledger ─► a slice per group ─►
    GroupRunner passes ─► outputs acknowledged ─► ledger: offsets committable ─► commit task

Commits run in their own task every ``COMMIT_INTERVAL_S`` so they never stall the loop.  On
a rebalance the worker finishes what it fetched (bounded), commits it, and only then gives
partitions up; on assignment it recovers the tables of the new partitions before any of their
records reaches a stage.

A graceful stop (``stop``) takes no new batch, leaves queued records unprocessed, lets the
passes under way finish and their outputs be acknowledged (bounded by ``STOP_DRAIN_S``),
commits what is done, leaves the group, and only then lets the caller stop the stores and
venues.  Anything unfinished when the bound passes is cancelled unsettled: it is redelivered,
never dead-lettered.  A rebalance does the same before giving its partitions up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    CommitFailedError,
    CorruptRecordException,
    KafkaError,
    UnsupportedCodecError,
)

from pipeline import limits
from pipeline.runtime.delivery.groups import StageGroup
from pipeline.runtime.delivery.lanes import LanePolicy, PassSizer
from pipeline.runtime.delivery.ledger import OffsetLedger
from pipeline.runtime.delivery.patches import (
    FETCH_IDLE_WAIT_MS,
    FETCH_MAX_WAIT_MS,
    AdaptiveWaitConsumer,
    Gathering,
)
from pipeline.runtime.delivery.runner import GroupRunner
from pipeline.runtime.delivery.safety import FailureCounter
from pipeline.runtime.delivery.sink import KafkaSink, send_output
from pipeline.runtime.delivery.tables import TableSet
from pipeline.runtime.loop_lag import LoopLag
from pipeline.stages.base import Record
from pipeline.stages.rejections import dead_letter
from pipeline.store import worker_health

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 0.1
MAX_INFLIGHT_RECORDS = 16_000
"""Records of the fetch batches in flight before the loop waits: bounds memory and the work
a crash replays (8 full fetches).  Under load this is the bound that acts: when project, the
slowest group, falls this far behind, the fetches stop and every group waits for it."""
MAX_INFLIGHT_BATCHES = 512
"""Fetch batches in flight before the loop waits: only a safety net.  At a steady rate a fetch
brings a few records, and a batch stays in flight until the slowest group that reads it
(project, whose pass waits for PostgreSQL and Redis) is done with it; a cap of 8 batches
stopped the fetches the chain was waiting for, for as long as project's pass, while the chain
had nothing queued (session 13: 63-74 such waits in a worker during an 8 s run at 500/s)."""
MAX_OPEN_BATCHES_LANES = 16
"""With lanes: fetch batches not yet done before the loop waits.  Done batches waiting
behind one whose routine records are still queued do not count (they hold no records, and
counting them would stop the fetches that bring urgent records); the routine lanes' memory
is bounded by pausing them (``lanes.to_pause``)."""
PAUSED_FETCH_TIMEOUT_MS = 10
"""``getmany``'s wait while a lane is paused: a pass that drains it resumes it at once."""
MAX_FETCH_RECORDS = 2000
REBALANCE_DRAIN_S = 10.0
STOP_DRAIN_S = 8.0
PROBE_ROUNDS = 100
DECODE_ERRORS = (UnsupportedCodecError, CorruptRecordException, ValueError, OSError)
"""What decoding a fetched batch raises: no codec library, a bad CRC, a corrupt payload
(the codec libraries raise ValueError or OSError subclasses)."""


class KafkaRuntime:
    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        groups: Sequence[StageGroup],
        tables: TableSet,
        sink: KafkaSink,
        *,
        trace: bool = False,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
        fetch_idle_wait_ms: int = FETCH_IDLE_WAIT_MS,
        assignor: type[AbstractPartitionAssignor] = RangePartitionAssignor,
        lanes: LanePolicy | None = None,
        pipelined_tail: bool = False,
        gathering: Gathering | None = None,
    ) -> None:
        self._assignor = assignor
        self._gathering = gathering
        """Fetch sizes while records flow (``patches.Gathering``); None: each fetch returns
        as soon as a record arrives."""
        self._fetch_waits = (fetch_max_wait_ms, fetch_idle_wait_ms)
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.ledger = OffsetLedger()
        self.tables = tables
        self.counter = FailureCounter()
        self.sink = sink
        self.fatal: BaseException | None = None
        self._groups = list(groups)
        self._trace = trace

        # With lanes, the scheduled group (the chain) takes its passes by lane, each sized to
        # the time budget.  Other groups of the same worker (ingest, project) keep their
        # batch.max: their passes delay an urgent record as much as the chain's, so for
        # urgent latency they run in processes of their own (``sep bench overload`` does).
        # (Sizing them too was measured to starve them: a pass's CPU time counts what the
        # other groups computed during its awaits, so each shrank the other to one record.)
        def scheduled_here(group: StageGroup) -> bool:
            return lanes is not None and group.nodes[0].spec.name in lanes.scheduled

        self.lanes = lanes if any(scheduled_here(g) for g in groups) else None
        self.runners = [
            GroupRunner(
                g,
                self.sink,
                self.ledger,
                counter=self.counter,
                on_fatal=self._fail,
                trace=trace,
                lanes=lanes.lanes_for(g.nodes[0].spec.name) if lanes is not None else (),
                sizer=PassSizer(lanes.budget_s)
                if lanes is not None and lanes.budget_s is not None and scheduled_here(g)
                else None,
                pipelined_tail=pipelined_tail,
                shares_loop=len(groups) > 1,
            )
            for g in groups
        ]
        self._lane_topics = frozenset(lane.topic for r in self.runners for lane in r.lanes)
        self._by_topic: dict[str, list[GroupRunner]] = {}
        for runner in self.runners:
            for topic in runner.group.inputs:
                self._by_topic.setdefault(topic, []).append(runner)
        self.consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._recovered = asyncio.Event()
        """Clear while a rebalance recovers the tables of newly assigned partitions: aiokafka
        makes an assignment active before its callback returns, so its fetcher can bring
        records of those partitions while their tables are still being read; they wait."""
        self._recovered.set()
        self.stopped = asyncio.Event()
        self.started_at = time.monotonic()
        self.loop_lag = LoopLag()
        self._baselines: dict[tuple[str, int], int] = {}
        """Each partition's committed offset when first looked at in this assignment."""
        self.paused_lanes: set[str] = set()
        """Lane topics this worker is not fetching now (their records queued here suffice)."""
        self.lane_pauses: collections.Counter[str] = collections.Counter()
        """Per lane topic, how many times its fetching was paused (not sampled: counted)."""

    @property
    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    def _fail(self, exc: BaseException) -> None:
        """A batch's outputs were not acknowledged: stop, so a restart redelivers it."""
        if self.fatal is None:
            self.fatal = exc
            self._stopping.set()

    async def start(self) -> None:
        await self.tables.ensure_changelogs(self.bootstrap)
        await self.sink.start()
        self.consumer = AdaptiveWaitConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=f"{self.group_id}-worker",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=limits.CONSUMER_MAX_PARTITION_FETCH_BYTES,
            fetch_max_bytes=limits.CONSUMER_FETCH_MAX_BYTES,
            # Join a group in about a second after a restart, not tens of seconds.
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            rebalance_timeout_ms=20000,
            max_poll_interval_ms=300000,
            fetch_max_wait_ms=self._fetch_waits[0],
            idle_wait_ms=self._fetch_waits[1],
            records="stage",
            gathering=self._gathering,
            # Ranges per topic: partition p of every co-partitioned topic goes to one worker
            # (the planner's pending flow reads sep.executions beside the intents it plans;
            # round-robin over all topic-partitions splits them from 3 workers on).
            # (A singleton stage's worker passes ``delivery.singleton``'s instead.)
            partition_assignment_strategy=(self._assignor,),
        )
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))
        await self.consumer.start()
        for runner in self.runners:
            self._tasks.append(
                asyncio.create_task(self._guard(runner.run()), name=f"group-{runner.name}")
            )
        self._tasks.append(asyncio.create_task(self._guard(self._commit_loop()), name="commit"))
        self._tasks.append(
            asyncio.create_task(
                self.loop_lag.run(report_every_s=1.0 if self._trace else None), name="loop-lag"
            )
        )
        self._fetching = asyncio.create_task(self._guard(self._fetch_loop()), name="fetch")

    async def _guard(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("runtime task failed; stopping the worker")
            self._fail(exc)

    async def _fetch_loop(self) -> None:
        consumer, ledger = self.consumer, self.ledger
        assert consumer is not None
        while not self._stopping.is_set():
            waiting = ledger.inflight_records >= MAX_INFLIGHT_RECORDS or (
                ledger.inflight >= MAX_INFLIGHT_BATCHES
                if self.lanes is None
                else ledger.open_batches >= MAX_OPEN_BATCHES_LANES
            )
            if waiting:
                if self._trace:
                    log.info(
                        "fetch waits: batches in flight",
                        extra={
                            "inflight": ledger.inflight,
                            "queued": {r.name: r.depth for r in self.runners},
                        },
                    )
                # Until a batch is done (not all of them: that stopped fetching for as long
                # as the slowest group's pass, up to 50 ms, with room long free).
                await ledger.wait_for_a_batch(0.05)
                continue
            # aiokafka returns only records of the current assignment (it waits out a
            # reassignment and drops what was fetched for the old one), and they are queued
            # below before any rebalance callback can run: a revoke then finds them queued.
            paused = self._apply_pauses() if self.lanes is not None else False
            try:
                data = await consumer.getmany(
                    timeout_ms=PAUSED_FETCH_TIMEOUT_MS if paused else 200,
                    max_records=MAX_FETCH_RECORDS,
                )
            except DECODE_ERRORS as exc:
                data = await self._skip_undecodable(exc)
            if not data or self._stopping.is_set():
                continue  # records of a stop are not taken: they are fetched again later
            # Not before the tables of their partitions are recovered (a pass would decide
            # without the decisions already made: seen as a strategy runner starting its
            # strategies afresh while their saved states were still being read).
            await self._recovered.wait()
            if self._stopping.is_set():
                continue
            slices: dict[GroupRunner, list[Record]] = {}
            ends: dict[tuple[str, int], int] = {}
            for tp, messages in data.items():
                if not messages:
                    continue
                ends[(tp.topic, tp.partition)] = messages[-1].offset + 1
                # Built as Records by the fetcher (``records="stage"``); a response parsed
                # before its patch took effect still holds ConsumerRecords.
                records = messages if type(messages[0]) is Record else _records(messages)
                for runner in self._by_topic.get(tp.topic, ()):
                    slices.setdefault(runner, []).extend(records)
            batch = ledger.open(ends, len(slices), sum(len(m) for m in data.values()))
            for runner, records in slices.items():
                runner.put(batch, records)
            if self._trace:
                self._trace_fetch(slices)

    def _trace_fetch(self, slices: Mapping[GroupRunner, list[Record]]) -> None:
        """How old each group's records were when fetched (now - their record timestamp, the
        producer's send time): with the runner's ``batch`` lines (queued until the pass
        began) it splits a hop into reaching the worker and waiting in it."""
        now = time.time_ns() // 1_000_000
        log.info(
            "fetched",
            extra={
                "ages_ms": {
                    runner.name: [now - r.timestamp_ms for r in records]
                    for runner, records in slices.items()
                    if runner.name != "project"  # every record of every topic: too many lines
                }
            },
        )

    def _apply_pauses(self) -> bool:
        """Pause the lane partitions the scheduled groups have enough of; resume the others.
        Whether any is paused."""
        consumer = self.consumer
        assert consumer is not None
        topics: set[str] = set()
        for runner in self.runners:
            topics |= runner.lanes_to_pause()
        lane_partitions = [tp for tp in consumer.assignment() if tp.topic in self._lane_topics]
        want = {tp for tp in lane_partitions if tp.topic in topics}
        now = consumer.paused()
        if want - now:
            consumer.pause(*(want - now))
            self.lane_pauses.update({tp.topic for tp in want - now})
        resume = {tp for tp in now if tp in lane_partitions and tp not in want}
        if resume:
            consumer.resume(*resume)
        self.paused_lanes = topics
        return bool(want)

    async def _skip_undecodable(self, error: BaseException) -> dict[Any, list[Any]]:
        """A fetched record batch could not be decoded (corrupt, or a codec we lack).

        aiokafka raises from ``getmany`` without saying which partition, and fetches the same
        batch again on the next call: left alone, the worker crash-loops on it for ever.  So
        each partition is fetched on its own until the one that fails is found; the record at
        its position is dead-lettered with the reason and skipped (a batch of N records takes
        N rounds: each record is accounted for).  What the healthy partitions returned
        meanwhile is processed as usual.
        """
        consumer = self.consumer
        assert consumer is not None
        data: dict[Any, list[Any]] = {}
        for _ in range(PROBE_ROUNDS):
            for tp in sorted(consumer.assignment()):
                try:
                    data.update(
                        await consumer.getmany(tp, timeout_ms=0, max_records=MAX_FETCH_RECORDS)
                    )
                except DECODE_ERRORS as exc:
                    await self._dead_letter_undecodable(tp, exc)
                    return data
            if data:
                return data  # the failing batch is fetched again later; probe then
            await asyncio.sleep(0.05)
        raise RuntimeError(
            "a record batch could not be decoded and no partition reproduces it"
        ) from error

    async def _dead_letter_undecodable(self, tp: TopicPartition, error: BaseException) -> None:
        consumer = self.consumer
        assert consumer is not None
        offset = await consumer.position(tp)
        reason = f"record batch could not be decoded: {error!r}"
        log.error(
            "record dead-lettered",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": offset,
                "reason": reason,
            },
        )
        key = f"dl-undecodable-{tp.topic}-{tp.partition}-{offset}"
        ack = await send_output(
            self.sink,
            dead_letter(
                key,
                b"",
                reason=reason,
                errors=(),
                source=f"{tp.topic}/{tp.partition}/{offset}",
                correlation_id="",
            ),
        )
        await ack  # durable before the offset can be committed past it
        self.counter.dead_letters["fetch"] = self.counter.dead_letters.get("fetch", 0) + 1
        consumer.seek(tp, offset + 1)
        self.ledger.open({(tp.topic, tp.partition): offset + 1}, 0)

    async def health_report(self) -> dict[str, Any]:
        """Per stage group: failing or not; per partition: stalled or not (see
        ``pipeline.store.worker_health``)."""
        loop = asyncio.get_running_loop()
        failing = self.counter.failing_since
        groups: dict[str, Any] = {}
        for runner in self.runners:
            names = [n.spec.name for n in runner.group.nodes]
            since = [loop.time() - failing[n] for n in names if n in failing]
            failing_for = (
                max(since) if since and max(since) >= worker_health.FAILING_AFTER_S else None
            )
            groups[runner.name] = {
                "batches": runner.stats.batches,
                "records": runner.stats.records,
                "queued": runner.depth,
                "failingForS": failing_for,
                "failures": sum(self.counter.failures.get(n, 0) for n in names),
                "deadLetters": sum(self.counter.dead_letters.get(n, 0) for n in names),
            }
        stalled: dict[str, Any] = {}
        consumer = self.consumer
        if consumer is None:
            return {"groups": groups, "stalled": stalled}
        for runner in self.runners:
            if runner.lanes:  # each group its own lanes (ingest's input lanes, the chain's)
                groups[runner.name]["lanes"] = await self._lane_report(consumer, runner)
        for tp in sorted(consumer.assignment()):
            key = (tp.topic, tp.partition)
            end = consumer.highwater(tp)
            base = self.ledger.committed_offset(key)
            if base is None:
                base = self._baselines.get(key)
                if base is None:
                    # The group's committed offset when this worker took the partition
                    # (not the fetch position, which runs ahead of what is processed).
                    with contextlib.suppress(Exception):
                        base = self._baselines[key] = await consumer.committed(tp) or 0
            if end is None or base is None or end <= base:
                continue
            unmoved = self.ledger.unmoved_for(key)
            if unmoved >= worker_health.STALLED_AFTER_S:
                stalled[f"{tp.topic}/{tp.partition}"] = {
                    "waiting": end - base,
                    "committed": base,
                    "forS": round(unmoved, 1),
                }
        return {
            "group": self.group_id,
            "pid": os.getpid(),
            "upS": round(time.monotonic() - self.started_at, 1),
            "groups": groups,
            "stalled": stalled,
            "loopLagMs": self.loop_lag.percentiles(),
            "fatal": None if self.fatal is None else repr(self.fatal),
            "at": time.time(),
        }

    async def _lane_report(self, consumer: AIOKafkaConsumer, runner: GroupRunner) -> dict[str, Any]:
        """Per lane topic of a scheduled group: queued here, behind in Kafka (the end
        offset less the fetch position, over this worker's partitions), taken, waits."""
        report: dict[str, Any] = {}
        if runner.lanes:
            depths = runner.lane_depths
            for topic, stats in runner.lane_stats.items():
                behind = 0
                for tp in consumer.assignment():
                    if tp.topic != topic:
                        continue
                    end = consumer.highwater(tp)
                    with contextlib.suppress(Exception):  # no position yet: nothing fetched
                        position = await asyncio.wait_for(consumer.position(tp), 0.1)
                        if end is not None:
                            behind += max(0, end - position)
                report[topic] = {
                    "queued": depths.get(topic, 0),
                    "behind": behind,
                    "records": stats.records,
                    "waitMsSum": round(stats.wait_ms_sum, 1),
                    "waitMsMax": stats.take_max(),
                    "paused": topic in self.paused_lanes,
                    "pauses": self.lane_pauses[topic],
                }
        return report

    async def _publish_health(self, redis_url: str, prefix: str) -> None:
        client = aioredis.from_url(redis_url)
        worker_id = f"{socket.gethostname()}-{os.getpid()}"
        try:
            while True:
                with contextlib.suppress(Exception):  # Redis away: the record just expires
                    await worker_health.publish(
                        client, prefix, worker_id, await self.health_report()
                    )
                await asyncio.sleep(worker_health.PUBLISH_EVERY_S)
        finally:
            with contextlib.suppress(Exception):
                await client.delete(worker_health.key_of(prefix, worker_id))
                await client.aclose()

    def publish_health(self, redis_url: str, prefix: str) -> None:
        """Publish this worker's health to Redis until it stops."""
        self._tasks.append(
            asyncio.create_task(self._publish_health(redis_url, prefix), name="health")
        )

    async def _commit_loop(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(COMMIT_INTERVAL_S)
            await self.commit()

    async def commit(self) -> None:
        offsets = self.ledger.committable()
        if not offsets or self.consumer is None:
            return
        try:
            await self.consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
            self.ledger.committed(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance is under way: the revoke handler commits what is done.
            log.info("commit deferred", extra={"error": repr(exc)})

    async def wait(self) -> None:
        """Until a stop is asked for or the runtime fails."""
        await self._stopping.wait()

    async def stop(self) -> None:
        """The graceful stop (see the module docstring)."""
        self._stopping.set()
        fetching = getattr(self, "_fetching", None)
        if fetching is not None:
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetching
        # Queued work is left for whoever reads these partitions next; the passes under way
        # finish (bounded), so their outputs are acknowledged and their offsets committed.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_DRAIN_S
        for runner in self.runners:
            runner.abandon_queued()
        finished = [
            await runner.finish_running(max(0.0, deadline - loop.time())) for runner in self.runners
        ]
        if not all(finished):
            log.warning(
                "stop: a pass still running after the bound is cancelled; its records "
                "will be redelivered",
                extra={"inflight": self.ledger.inflight},
            )
        await self.commit()
        for runner in self.runners:
            runner.cancel_running()  # past the bound: unsettled, so redelivered
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.consumer is not None:
            await self.consumer.stop()  # leaves the group: the others take over at once
        await self.sink.stop()
        self.stopped.set()

    def snapshot(self) -> dict[str, Any]:
        """The consumer's state, for ``kill -USR1`` and the health record."""
        consumer = self.consumer
        return {
            "ledger": self.ledger.snapshot(),
            "groups": {
                r.name: {
                    "queued": r.depth,
                    "batches": r.stats.batches,
                    "records": r.stats.records,
                    "idle_s": round(time.monotonic() - r.stats.last_batch_at, 1)
                    if r.stats.last_batch_at
                    else None,
                }
                for r in self.runners
            },
            "failures": dict(self.counter.failures),
            "dead_letters": dict(self.counter.dead_letters),
            "sink": {"sent": self.sink.sent, "sent_slow": self.sink.sent_slow},
            "assignment": sorted(
                f"{tp.topic}/{tp.partition}" for tp in (consumer.assignment() if consumer else ())
            ),
        }


def _records(messages: list[Any]) -> list[Record]:
    return [
        Record(
            m.topic,
            m.partition,
            m.offset,
            m.timestamp,
            m.key,
            m.value if m.value is not None else b"",
        )
        for m in messages
    ]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: KafkaRuntime) -> None:
        self._runtime = runtime

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Work not yet started is dropped, not drained: with a backlog, draining it could
        # outlast the bound, and a pass still running here after the next owner took the
        # partition would decide its records a second time, without the first decision in
        # the table (measured: plan.created and plan.rejected for one intent).  Only the
        # passes under way finish; everything after them is fetched again by the next owner.
        runtime = self._runtime
        dropped = sum(runner.abandon_queued() for runner in runtime.runners)
        finished = [await runner.finish_running(REBALANCE_DRAIN_S) for runner in runtime.runners]
        if not all(finished):
            log.warning(
                "rebalance: a pass is still running after the bound; its records "
                "will be processed again by the next owner",
                extra={
                    "groups": [
                        r.name for r, f in zip(runtime.runners, finished, strict=True) if not f
                    ]
                },
            )
        if dropped:
            log.info(
                "rebalance: queued records left for the next owner", extra={"records": dropped}
            )
        await runtime.commit()
        gone = [(tp.topic, tp.partition) for tp in revoked]
        runtime.ledger.revoke(gone)
        self._revoked = set(gone)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # aiokafka rebalances eagerly: everything was revoked a moment ago, and nobody
        # processed anything in between, so the tables of partitions we keep are current;
        # only those of partitions new to this worker are read from their changelogs.
        runtime = self._runtime
        partitions = [(tp.topic, tp.partition) for tp in assigned]
        previous: set[tuple[str, int]] = getattr(self, "_revoked", set())
        runtime.tables.forget(previous - set(partitions))
        runtime.ledger.assign(partitions)
        runtime._baselines.clear()
        runtime._recovered.clear()
        try:
            await runtime.tables.recover(
                runtime.bootstrap, [tp for tp in partitions if tp not in previous]
            )
        finally:
            runtime._recovered.set()
        log.info(
            "partitions assigned",
            extra={"partitions": len(partitions), "generation": runtime.ledger.generation},
        )
