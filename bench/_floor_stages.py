"""The floor's stage processes: ``python -m bench._floor_stages --bootstrap B --run R``.

Started by ``bench/floor.py`` (its docstring says what the floor is), one per worker process
the pipeline would have.  Each runs every stage as a batched aiokafka loop plus the project
consumer, and reports on stdout, one JSON object a line: ``{"assigned": {group: partitions}}``
when its assignment changes, ``{"done": {run: n}, "latencies": {run: {kind: [ms]}}}`` for what
finished since the last report.  SIGTERM stops it.
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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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
    return orjson.dumps(
        {
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
    )


async def _stage(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    run: str,
    index: int,
    stop: asyncio.Event,
) -> None:
    name, events = STAGES[index]
    previous = STAGES[index - 1][0] if index else None
    target = topic(run, name)
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=2000)
        acks = []
        for records in batches.values():
            for record in records:
                # {"type", "correlationId", "seq", "submittedNs", "payload", ...} -> `events`
                # envelopes of this stage, the last one typed "<stage>.last"
                event = orjson.loads(record.value)
                if previous and event["type"] != f"{previous}.last":
                    continue  # a stage acts only on the event that hands the intent on
                for k in range(events):
                    out = envelope(event, name, k, events)
                    acks.append(await producer.send(target, out, key=record.key))
        if acks:
            await asyncio.gather(*acks)  # every output acked before its input is committed
        if batches:
            await consumer.commit()


async def _project(consumer: AIOKafkaConsumer, progress: _Progress, stop: asyncio.Event) -> None:
    seen: set[tuple[str, str]] = set()
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=5000)
        now = time.time_ns()
        for records in batches.values():
            for record in records:
                event = orjson.loads(record.value)
                kind = _TIMED.get(event["type"])
                if kind is None or (kind, event["correlationId"]) in seen:
                    continue  # redelivered after a rebalance: counted once
                seen.add((kind, event["correlationId"]))
                run = event["run"]
                progress.latencies.setdefault(run, {}).setdefault(kind, []).append(
                    (now - event["submittedNs"]) / 1e6
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


async def serve(bootstrap: str, run: str) -> None:
    """One stage process: every stage and the project consumer, until SIGTERM.  The default
    asyncio loop, not uvloop, as in ../shared/bench/kafka_floor.py: the floor the issue's
    figures were taken with."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # acks="all" and linger 1 ms: the pipeline's own producer settings (pipeline/runtime/app.py).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=1, max_batch_size=256 * 1024
    )
    # One consumer (and group) per stage, as kafka_floor.py has it: the naive layout.
    groups = [f"floor-{run}-{name}" for name, _events in STAGES]
    stages = [
        _consumer(bootstrap, group, topic(run, STAGES[i - 1][0] if i else None))
        for i, group in enumerate(groups)
    ]
    project = _consumer(
        bootstrap, f"floor-{run}-project", *(topic(run, name) for name, _ in STAGES)
    )
    consumers = dict(zip([*groups, f"floor-{run}-project"], [*stages, project], strict=True))
    await producer.start()
    for consumer in consumers.values():
        await consumer.start()
    progress = _Progress()
    tasks = [
        asyncio.create_task(coro)
        for coro in (
            *(_stage(c, producer, run, i, stop) for i, c in enumerate(stages)),
            _project(project, progress, stop),
            _report(consumers, progress, stop),
        )
    ]
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers.values():
            await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._floor_stages")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--run", required=True, help="the floor run: topic and group names")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.bootstrap, args.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
