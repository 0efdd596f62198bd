"""``sep bench transactions``: Kafka transactions (consume-transform-produce) against this
runtime's way (idempotent producer, outputs acknowledged, then offsets committed), A/B.

Issue 11.5 asks whether transactions could replace the remembered decisions and parts of the
offset ledger.  This measures what they cost on the same broker in the same run: a chain of
``--hops`` batched stages, each reading the previous one's topic and writing one record per
input, flat out (records/s through the chain) and at a steady rate (first produce -> last
stage's output seen by a downstream reader, p50/p99).

    plain: getmany -> send each -> await acks -> commit offsets (async, not per batch)
    txn:   getmany -> begin -> send each -> send_offsets_to_transaction -> commit
           (downstream readers use isolation_level=read_committed: they see a batch only
           once its transaction has committed)

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench._common import json_line, machine, pct

PARTITIONS = 8


async def hop(
    bootstrap: str, source: str, target: str, group: str, txn: bool, stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        isolation_level="read_committed" if txn else "read_uncommitted",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=1,
        enable_idempotence=True,
        transactional_id=f"{group}-tx" if txn else None,
    )
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            if not batches:
                continue
            offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
            if txn:
                async with producer.transaction():
                    for records in batches.values():
                        for r in records:
                            await producer.send(target, r.value, key=r.key)
                    await producer.send_offsets_to_transaction(offsets, group)
            else:
                acks = [
                    await producer.send(target, r.value, key=r.key)
                    for records in batches.values()
                    for r in records
                ]
                await asyncio.gather(*acks)
                await consumer.commit(offsets)
    finally:
        await producer.stop()
        await consumer.stop()


async def reader(
    bootstrap: str, topic: str, txn: bool, seen: dict[bytes, float], stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        isolation_level="read_committed" if txn else "read_uncommitted",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.perf_counter()
                for r in records:
                    seen.setdefault(r.value or b"", now)
    finally:
        await consumer.stop()


async def run_mode(
    bootstrap: str, txn: bool, hops: int, count: int, rate: float, seconds: float
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    topics = [f"txab.{run}.{i}" for i in range(hops + 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    stop = asyncio.Event()
    seen: dict[bytes, float] = {}
    tasks = [
        asyncio.create_task(hop(bootstrap, topics[i], topics[i + 1], f"txab-{run}-{i}", txn, stop))
        for i in range(hops)
    ]
    tasks.append(asyncio.create_task(reader(bootstrap, topics[-1], txn, seen, stop)))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    try:

        async def wait_seen(n: int, within_s: float = 120.0) -> None:
            deadline = time.perf_counter() + within_s
            while len(seen) < n and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # polling a dict the reader task fills

        # warm-up: groups joined, transactions initialised
        for i in range(200):
            await producer.send(topics[0], b"w%d" % i, key=b"%d" % i)
        await wait_seen(200)
        seen.clear()
        started = time.perf_counter()
        for i in range(count):
            await producer.send(topics[0], b"t%d" % i, key=b"%d" % i)
        await producer.flush()
        await wait_seen(count)
        throughput = len(seen) / (time.perf_counter() - started)
        seen.clear()
        sent: dict[bytes, float] = {}
        n = int(rate * seconds)
        began = time.perf_counter()
        for i in range(n):
            value = b"s%d" % i
            sent[value] = time.perf_counter()
            await producer.send(topics[0], value, key=b"%d" % i)
            await asyncio.sleep(max(0.0, began + (i + 1) / rate - time.perf_counter()))
        await wait_seen(n)
        lat = [(seen[v] - t) * 1000 for v, t in sent.items() if v in seen]
    finally:
        stop.set()
        await producer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await admin.delete_topics(topics)
        await admin.close()
    return {
        "mode": "txn" if txn else "plain",
        "records_per_s": round(throughput, 1),
        "latency_p50_ms": round(pct(lat, 0.5), 1),
        "latency_p99_ms": round(pct(lat, 0.99), 1),
        "lost": n - len(lat),
    }


async def measure(
    bootstrap: str, hops: int, count: int, rate: float, seconds: float
) -> dict[str, Any]:
    # plain, txn, plain, txn: the machine drifts, so interleave and keep both runs
    results = [
        await run_mode(bootstrap, txn, hops, count, rate, seconds)
        for txn in (False, True, False, True)
    ]
    return {
        "bench": "transactions",
        "machine": machine(),
        "hops": hops,
        "count": count,
        "rate": rate,
        "runs": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench transactions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--hops", type=int, default=3, help="stages in the chain (3)")
    parser.add_argument("--count", type=int, default=20000, help="records flat out (20000)")
    parser.add_argument("--rate", type=float, default=500, help="steady records/s (500)")
    parser.add_argument("--seconds", type=float, default=8, help="steady run length (8)")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    args = parser.parse_args(argv)

    def go(bootstrap: str) -> dict[str, Any]:
        return asyncio.run(measure(bootstrap, args.hops, args.count, args.rate, args.seconds))

    if args.bootstrap:
        result = go(args.bootstrap)
    else:
        from bench._services import bench_services

        with bench_services() as settings:
            result = go(settings.kafka)
    print(f"sep bench transactions — {result['machine']}, {args.hops} hops")
    print(f"{'mode':>8} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>5}")
    for r in result["runs"]:
        print(
            f"{r['mode']:>8} {r['records_per_s']:>10} {r['latency_p50_ms']:>8} "
            f"{r['latency_p99_ms']:>8} {r['lost']:>5}"
        )
    print(json_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
