"""The floor's stage processes: ``python -m bench._floor_stages --bootstrap B --run R``.

Started by ``bench/floor.py`` (its docstring says what the floor is), one per worker process
the pipeline would have.  Each runs every stage as a batched aiokafka loop plus the project
consumer, and reports on stdout, one JSON object a line: ``{"assigned": {group: partitions}}``
when its assignment changes, ``{"done": {run: n}, "latencies": {run: {kind: [ms]}}}`` for what
finished since the last report.  SIGTERM stops it.

Two options make it the floor of the *work* rather than of the traffic alone (``sep bench
floor --work``): ``--work`` burns, per intent a stage acts on, as much CPU as that stage's own
logic costs (``{"plan": 140.0, ...}``, microseconds of this thread's CPU clock, so time spent
preempted does not count), and ``--fuse`` runs ingest → execute as one loop over the
submissions, as ``topology.yaml``'s fusion does (since session 18): one Kafka hop to a plan,
each stage's events still written to its own topic, which project reads.
``--one-consumer`` gives the process's loops one consumer (one group, one fetch in flight) as
a pipeline worker has, rather than a consumer each.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

# (stage, events it writes per intent): the event contract of ARCHITECTURE.md -- ingest
# intent.submitted; validate risk.approved + intent.accepted; prioritise intent.prioritised; plan
# plan.created; execute exec.started, step_submitted, step_filled, completed (one-step plans,
# as the sim venue's mostly are).
STAGES: tuple[tuple[str, int], ...] = (
    ("ingest", 1),
    ("validate", 2),
    ("prioritise", 1),
    ("plan", 1),
    ("execute", 4),
)
REPORT_EVERY_S = 0.1
# The events the project consumer times, as the pipeline bench times plan.created and
# exec.completed.
_TIMED = {"plan.last": "plan", "execute.last": "completed"}
EVENTS_PER_INTENT = sum(events for _name, events in STAGES)
FUSED = tuple(range(len(STAGES)))
"""``--fuse``: the stages (indices into STAGES) one loop runs, as the pipeline's fusion has
ingest → execute."""


def burn(microseconds: float) -> None:
    """Spend ``microseconds`` of this thread's CPU (a stand-in for a stage's logic)."""
    if microseconds <= 0:
        return
    end = time.thread_time_ns() + int(microseconds * 1000)
    while time.thread_time_ns() < end:
        pass


def topic(run: str, stage: str | None) -> str:
    """The topic ``stage`` writes (``None``: the submissions ingest reads)."""
    return f"floor.{run}.{stage or 'submitted'}"


@dataclass
class _Progress:
    """What this process's project consumer has seen, reported to the parent as deltas."""

    done: dict[str, int] = field(default_factory=dict)  # run -> intents finished
    # run -> "plan" | "completed" -> ms from the submit to plan's / execute's last event
    latencies: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def _consumer(bootstrap: str, group: str, *topics: str) -> AIOKafkaConsumer:
    # fetch_max_wait_ms 10: a fetch returns within 10 ms of new data, as the pipeline's
    # fetch policy aims for; auto commit off: a batch is committed after its outputs' acks.
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        max_poll_records=2000,
    )


def envelope(event: dict[str, Any], stage: str, k: int, events: int) -> bytes:
    """The ``k``-th of the ``events`` envelopes ``stage`` writes for ``event`` (the last one
    typed "<stage>.last"); ``bench.runtime``'s stand-in stages write the same."""
    return orjson.dumps(envelope_of(event, stage, k, events))


def envelope_of(event: dict[str, Any], stage: str, k: int, events: int) -> dict[str, Any]:
    """``envelope``, not yet encoded (a fused loop hands the last one to its next stage)."""
    return {
        "eventId": uuid.uuid4().hex,
        "timestamp": time.time_ns(),
        "type": f"{stage}.last" if k == events - 1 else f"{stage}.{k}",
        "correlationId": event["correlationId"],
        "causationId": event.get("eventId"),
        "seq": event["seq"] + k + 1,
        "submittedNs": event["submittedNs"],
        "run": event["run"],
        "payload": event["payload"],
    }


Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class SharedConsumer:
    """``--one-consumer``: one consumer for every loop of the process, as a pipeline worker
    has.  A fetch task hands each loop the records of the topics it reads; a loop's
    ``commit`` marks what it finished, and a partition's offset is committed once every loop
    reading it is past it."""

    def __init__(self, consumer: AIOKafkaConsumer, reads: list[set[str]]) -> None:
        self.consumer = consumer
        self.reads = reads
        self.queues: list[asyncio.Queue[Batches]] = [asyncio.Queue() for _ in reads]
        self.finished: list[dict[TopicPartition, int]] = [{} for _ in reads]

    async def fetch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            for index, topics in enumerate(self.reads):
                mine = {tp: records for tp, records in batches.items() if tp.topic in topics}
                if mine:
                    self.queues[index].put_nowait(mine)

    def view(self, index: int) -> LoopConsumer:
        return LoopConsumer(self, index)


class LoopConsumer:
    """One loop's side of a ``SharedConsumer``: ``getmany`` and ``commit`` as a consumer's."""

    def __init__(self, shared: SharedConsumer, index: int) -> None:
        self.shared, self.index = shared, index
        self._taken: dict[TopicPartition, int] = {}

    async def getmany(self, timeout_ms: int, max_records: int) -> Batches:
        queue = self.shared.queues[self.index]
        try:
            batches = await asyncio.wait_for(queue.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}
        while not queue.empty():  # greedy, as the pipeline's groups take what is queued
            for tp, records in queue.get_nowait().items():
                batches.setdefault(tp, []).extend(records)
        self._taken = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        return batches

    async def commit(self) -> None:
        shared = self.shared
        shared.finished[self.index].update(self._taken)
        offsets = {}
        for tp in self._taken:
            readers = [i for i, topics in enumerate(shared.reads) if tp.topic in topics]
            if all(tp in shared.finished[i] for i in readers):
                offsets[tp] = min(shared.finished[i][tp] for i in readers)
        if offsets:
            await shared.consumer.commit(offsets)


async def _stage(
    consumer: AIOKafkaConsumer | LoopConsumer,
    producer: AIOKafkaProducer,
    run: str,
    steps: tuple[int, ...],
    stop: asyncio.Event,
    work: dict[str, float],
) -> None:
    """One loop: the stages ``steps`` (consecutive indices into STAGES) over the first one's
    input, each stage's events written to its own topic, the next stage handed the last one
    in memory."""
    first = steps[0]
    previous = STAGES[first - 1][0] if first else None
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=2000)
        acks = []
        # (record key, the event handed on) of every intent this loop acts on
        intents: list[tuple[bytes | None, dict[str, Any]]] = []
        for records in batches.values():
            for record in records:
                # {"type", "correlationId", "seq", "submittedNs", "payload", ...} -> `events`
                # envelopes of this stage, the last one typed "<stage>.last"
                event = orjson.loads(record.value)
                if previous and event["type"] != f"{previous}.last":
                    continue  # a stage acts only on the event that hands the intent on
                intents.append((record.key, event))
        for index in steps:
            name, events = STAGES[index]
            target = topic(run, name)
            burn(work.get(name, 0.0) * len(intents))
            handed = []
            for key, event in intents:
                for k in range(events):
                    out = envelope_of(event, name, k, events)
                    acks.append(await producer.send(target, orjson.dumps(out), key=key))
                handed.append((key, out))
            intents = handed
        if acks:
            await asyncio.gather(*acks)  # every output acked before its input is committed
        if batches:
            await consumer.commit()


async def _project(
    consumer: AIOKafkaConsumer | LoopConsumer, progress: _Progress, stop: asyncio.Event, work: float
) -> None:
    """Times the intents' plans and completions; ``work``: CPU microseconds an intent (spread
    over its events, as project's are)."""
    seen: set[tuple[str, str]] = set()
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=5000)
        burn(work * sum(len(r) for r in batches.values()) / EVENTS_PER_INTENT)
        for records in batches.values():
            for record in records:
                event = orjson.loads(record.value)
                kind = _TIMED.get(event["type"])
                if kind is None or (kind, event["correlationId"]) in seen:
                    continue  # redelivered after a rebalance: counted once
                seen.add((kind, event["correlationId"]))
                run = event["run"]
                # From the submission to the stage's stamp on the event it made, as the
                # pipeline bench times its events (not to this arrival: one hop more).
                progress.latencies.setdefault(run, {}).setdefault(kind, []).append(
                    (event["timestamp"] - event["submittedNs"]) / 1e6
                )
                if kind == "completed":
                    progress.done[run] = progress.done.get(run, 0) + 1
        if batches:
            await consumer.commit()


async def _report(
    consumers: dict[str, AIOKafkaConsumer], progress: _Progress, stop: asyncio.Event
) -> None:
    """Every REPORT_EVERY_S: partitions assigned per group, and what finished since."""
    last: dict[str, int] = {}
    while not stop.is_set():
        assigned = {group: len(c.assignment()) for group, c in consumers.items()}
        line: dict[str, Any] = {}
        if assigned != last:
            line["assigned"] = last = assigned
        if progress.done:
            line["done"], line["latencies"] = progress.done, progress.latencies
            progress.done, progress.latencies = {}, {}
        if line:
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
            sys.stdout.buffer.flush()
        await asyncio.sleep(REPORT_EVERY_S)


async def serve(
    bootstrap: str,
    run: str,
    work: dict[str, float] | None = None,
    fuse: bool = False,
    one_consumer: bool = False,
) -> None:
    """One stage process: every stage and the project consumer, until SIGTERM.  The default
    asyncio loop, not uvloop, as in ../shared/bench/kafka_floor.py: the floor the issue's
    figures were taken with.  ``work``, ``fuse``, ``one_consumer``: the module docstring."""
    work = work or {}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # acks="all" and linger 1 ms: the pipeline's own producer settings (pipeline/runtime/app.py).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=1, max_batch_size=256 * 1024
    )
    # One consumer (and group) per loop: a stage each, as kafka_floor.py has it (the naive
    # layout), or one for the fused chain; or one for them all (--one-consumer).
    loops = loops_of(fuse)
    reads = [{topic(run, STAGES[steps[0] - 1][0] if steps[0] else None)} for steps in loops] + [
        {topic(run, name) for name, _ in STAGES}
    ]
    groups = [f"floor-{run}-{STAGES[steps[0]][0]}" for steps in loops] + [f"floor-{run}-project"]
    views: list[AIOKafkaConsumer | LoopConsumer]
    if one_consumer:
        shared = SharedConsumer(
            _consumer(bootstrap, f"floor-{run}-all", *set().union(*reads)), reads
        )
        consumers = {f"floor-{run}-all": shared.consumer}
        views = [shared.view(i) for i in range(len(reads))]
    else:
        consumers = {
            group: _consumer(bootstrap, group, *topics)
            for group, topics in zip(groups, reads, strict=True)
        }
        views = list(consumers.values())
    await producer.start()
    for consumer in consumers.values():
        await consumer.start()
    progress = _Progress()
    tasks = [
        asyncio.create_task(coro)
        for coro in (
            *(
                _stage(c, producer, run, steps, stop, work)
                for steps, c in zip(loops, views, strict=False)
            ),
            _project(views[-1], progress, stop, work.get("project", 0.0)),
            _report(consumers, progress, stop),
            *([shared.fetch(stop)] if one_consumer else []),
        )
    ]
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers.values():
            await consumer.stop()
        await producer.stop()


def loops_of(fuse: bool) -> list[tuple[int, ...]]:
    """The stage loops (indices into STAGES) of a process: one a stage, or one fused."""
    if fuse:
        return [FUSED]
    return [(i,) for i in range(len(STAGES))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._floor_stages")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--run", required=True, help="the floor run: topic and group names")
    parser.add_argument(
        "--work", default="{}", help='JSON: CPU microseconds an intent by stage ({"plan": 140})'
    )
    parser.add_argument("--fuse", action="store_true", help="ingest → execute as one loop")
    parser.add_argument("--one-consumer", action="store_true", help="one consumer for all loops")
    args = parser.parse_args(argv)
    asyncio.run(
        serve(args.bootstrap, args.run, orjson.loads(args.work), args.fuse, args.one_consumer)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
