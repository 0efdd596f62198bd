"""``sep bench followers``: the risk feed's CPU per intent, alone, against a real broker.

Every validating worker follows every intent's acceptance, plan and execution events
(``pipeline.risk.feed``: ~7 records an intent, every partition of three topics), beside its
stages, on the same event loop.  In ``sep bench pipeline`` that cost is a few per cent of the
workers' CPU, well inside the run-to-run spread; here it is measured on its own:

* the records: ``--count`` intents made by the real stages in memory (ingest → execute on
  the sim venue, ``bench.stages``), the events of the three topics the feed reads, keyed and
  partitioned as the topology declares them;
* a Kafka broker of its own (free ports, temporary directory);
* **catch-up**: the topics filled first, then a fresh follower (``_BookFollower``, the
  risk feed's own, in a child process) reads them to the end: its CPU from start to caught up;
* **following**: the follower started on empty topics, then the records produced at
  ``--rate`` intents/s in the order the stages wrote them; the follower's CPU (its whole
  process: aiokafka's fetches and the book) from the first record to the last.

CPU µs per intent, median of ``--runs``.  Compare two versions by running this file against
each, alternately (only CPU figures compare on a shared machine).  Prints a table and, last,
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import orjson

from bench._common import json_line, machine

TOPICS = ("sep.intents.validated", "sep.plans", "sep.executions")
_CORRELATION = b'"correlationId":"'


def _key(value: bytes) -> bytes:
    """The record's key as the stages write it: the intent's id (its correlation id)."""
    start = value.index(_CORRELATION) + len(_CORRELATION)
    return value[start : value.index(b'"', start)]


async def _records(count: int, seed: int) -> list[tuple[str, bytes]]:
    """(topic, value) of every event the risk feed reads, in the order the stages wrote them
    (200 intents a pass)."""
    from bench.stages import INPUT, STAGES, sim_only
    from pipeline.config import Settings
    from pipeline.runtime.delivery.memory import build_memory_runtime
    from pipeline.samples import random_submission
    from pipeline.topology import load_topology

    topology = sim_only(load_topology())
    out: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        runtime, lifecycle = build_memory_runtime(
            topology, Settings(data_dir=Path(data_dir)), STAGES, keep_changelogs=False
        )
        await lifecycle.ensure_started()
        try:
            rng = random.Random(seed)
            seen = dict.fromkeys(TOPICS, 0)
            for first in range(0, count, 200):
                for i in range(first, min(first + 200, count)):
                    body = random_submission(
                        topology,
                        rng,
                        strategy_id=f"bench-{i % 5}",
                        client_intent_id=f"c{i}",
                        venues=["sim"],
                    )
                    runtime.feed(INPUT, b"bench", orjson.dumps(body))
                await runtime.run_until_idle()
                for topic in TOPICS:  # a pass's events, topic by topic
                    log = runtime.topics.log.get(topic, [])
                    out += [(topic, r.value) for r in log[seen[topic] :] if r.value is not None]
                    seen[topic] = len(log)
        finally:
            await lifecycle.stop()
    return out


async def _produce(
    bootstrap: str,
    records: Sequence[tuple[str, bytes]],
    intents: int,
    rate: float | None,
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks="all")
    await producer.start()
    try:
        per_intent = len(records) / intents
        started = time.monotonic()
        sent: list[Any] = []
        for n, (topic, value) in enumerate(records):
            # By key, as the stages' records (the default partitioner's hash is not the
            # sink's, but one intent's records still share a partition per topic).
            sent.append(await producer.send(topic, value, key=_key(value)))
            if rate is not None and n % 20 == 19:  # an open-loop schedule, 20 records a step
                ahead = started + (n + 1) / per_intent / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _follow(
    bootstrap: str,
    partitions: dict[str, int],
    expected: int,
    pipe: Connection,
    wait_ms: int | None,
) -> None:
    """The child: a risk follower from the beginning; sends its CPU seconds from its start to
    caught up, then (when told) from the first record to ``expected`` records applied."""
    from pipeline.risk.book import RiskBook
    from pipeline.risk.feed import _BookFollower, gathering
    from pipeline.runtime import gc_tuning

    async def run() -> None:
        gc_tuning.configure(gc_tuning.DEFAULT_THRESHOLD)  # as a worker runs
        book = RiskBook("USDC", {"WETH": Decimal(3000)})
        gather = None if wait_ms is None else gathering(wait_ms)
        follower = _BookFollower(bootstrap, partitions, book, {}, gather)
        started = time.process_time()
        await follower.start(120.0)
        caught_up = time.process_time() - started
        pipe.send(caught_up)  # the parent produces now (following) or the run is over
        if pipe.recv() == "follow":
            await follower.wait_for_update(0, 60.0)
            first = last = time.process_time()
            # ``expected`` is the fewest updates the records can make (read in the order
            # written); read across partitions, a plan can come before its acceptance and
            # count too: so on until nothing comes for a while.
            while True:
                try:
                    wait = 60.0 if follower.updates < expected else 0.5
                    await follower.wait_for_update(follower.updates, wait)
                except TimeoutError:
                    break
                last = time.process_time()
            pipe.send(last - first)
        await follower.stop()

    import uvloop  # the worker's event loop (``pipeline.runtime.worker``)

    uvloop.run(run())


def _child(
    bootstrap: str, partitions: dict[str, int], expected: int, wait_ms: int | None
) -> tuple[SpawnProcess, Connection]:
    """A fresh process (the follower's CPU is its own), the pipe to it."""
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    process = spawn.Process(target=_follow, args=(bootstrap, partitions, expected, theirs, wait_ms))
    process.start()
    return process, ours


def _updates_of(records: Sequence[tuple[str, bytes]]) -> int:
    """How many records a fresh book applies from these in the order written
    (``_BookFollower.updates``): the fewest in any order."""
    from pipeline.risk.book import RiskBook
    from pipeline.risk.feed import apply_record

    book = RiskBook("USDC", {"WETH": Decimal(3000)})
    return sum(apply_record(book, value) for _topic, value in records)


async def _topics(bootstrap: str, partitions: dict[str, int], run: int) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = {f"{t}.{run}": partitions[t] for t in TOPICS}
        await admin.create_topics([NewTopic(n, p, 1) for n, p in names.items()])
        return names
    finally:
        await admin.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from pipeline.devstack.kafka import KafkaBroker
    from pipeline.devstack.ports import choose_port
    from pipeline.topology import load_topology

    declared = {t.name: t.partitions for t in load_topology().topics}
    print(f"the stages make {args.count} intents' events…", file=sys.stderr)
    records = asyncio.run(_records(args.count, args.seed))
    catch_up: list[float] = []
    following: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sep-bench-followers-") as tmp:
        port = choose_port(0)
        broker = KafkaBroker(Path(tmp), port, choose_port(0, taken={port}))
        broker.start()
        asyncio.run(broker.wait_healthy())  # start() returns at once
        try:
            for run in range(args.runs):
                # Fresh topics each run (a follower reads them whole), the same partitions.
                names = asyncio.run(_topics(broker.bootstrap, declared, run))
                renamed = [(f"{t}.{run}", v) for t, v in records]
                asyncio.run(_produce(broker.bootstrap, renamed, args.count, None))
                process, pipe = _child(broker.bootstrap, names, 0, args.wait_ms)
                catch_up.append(pipe.recv() / args.count * 1e6)
                pipe.send("stop")
                process.join()
                # Following: empty topics, then the records at the rate.
                names = asyncio.run(_topics(broker.bootstrap, declared, 1000 + run))
                renamed = [(f"{t}.{1000 + run}", v) for t, v in records]
                expected = _updates_of(records)
                process, pipe = _child(broker.bootstrap, names, expected, args.wait_ms)
                pipe.recv()
                pipe.send("follow")
                asyncio.run(_produce(broker.bootstrap, renamed, args.count, args.rate))
                following.append(pipe.recv() / args.count * 1e6)
                process.join()
                print(
                    f"run {run + 1}/{args.runs}: catch-up {catch_up[-1]:.1f}, "
                    f"following {following[-1]:.1f} µs an intent",
                    file=sys.stderr,
                )
        finally:
            broker.stop()
    return {
        "records_per_intent": round(len(records) / args.count, 2),
        "bytes_per_intent": round(sum(len(v) for _t, v in records) / args.count),
        "catch_up_us_per_intent": round(statistics.median(catch_up), 2),
        "following_us_per_intent": round(statistics.median(following), 2),
        "catch_up_runs": [round(x, 2) for x in catch_up],
        "following_runs": [round(x, 2) for x in following],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench followers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=4000, help="intents (4000)")
    parser.add_argument("--rate", type=float, default=500.0, help="following: intents/s (500)")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are printed (3)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--wait-ms",
        type=int,
        default=None,
        help="the feed's gathering wait (SEP_RISK_FEED_WAIT_MS; default: the feed's own)",
    )
    args = parser.parse_args(argv)
    result = measure(args)
    print(f"sep bench followers — {machine()}")
    print(
        f"the risk feed, {args.count} intents ({result['records_per_intent']} records, "
        f"{result['bytes_per_intent']} bytes an intent), median of {args.runs} runs"
    )
    print(f"{'catch-up':<28} {result['catch_up_us_per_intent']:>8.1f} µs CPU an intent")
    print(
        f"{f'following at {args.rate:g}/s':<28} "
        f"{result['following_us_per_intent']:>8.1f} µs CPU an intent"
    )
    print(json_line({"bench": "followers", "machine": machine(), **vars(args), **result}))
    return 0
