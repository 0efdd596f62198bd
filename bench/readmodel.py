"""``sep bench readmodel``: Redis and Python CPU per intent of the project stage's read model.

Starts its own Redis (free port, temporary directory), then applies a realistic stream of
events through the real ``ReadModel.apply`` (the project stage's call: ``positions="mark"``)
and reports CPU per intent: Redis' (``INFO cpu`` user+sys delta) and this process' (building
the script's arguments, redis-py, the reply), plus Redis' commands per intent
(``INFO commandstats`` delta).

The stream: a few lifecycles are made by the real stages (ingest, validate, prioritise, plan,
execute on the sim venue: 9 events each), then cloned into ``--count`` intents with fresh ids
and strategies.  Intents arrive at ``--rate``/s; each intent's events land on the topics
project reads as the fused chain emits them (ingested at once, validated, prioritised, plans
and executions ``--lag-ms`` later, each topic with its own jitter).  Project's batches are
``--batch-ms`` of arrivals, ordered topic by topic (as the consumer returns them), so an
intent is applied in 2-4 batches; a fraction ``--dup`` of batches is delivered a second time
a few batches later (a redelivery after a crash).  Prints a table and, last, one JSON line.

Compare two versions of the read model by running this file against each (same machine,
alternately): only CPU figures compare on a shared machine, not wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench._common import json_line, machine
from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.ids import new_ulid
from pipeline.models.events import Event
from pipeline.plugins.manager import build_venues
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext
from pipeline.stages.execute import build as build_execute
from pipeline.stages.ingest import ingest_record
from pipeline.stages.plan import plan_output
from pipeline.stages.prioritise import prioritise_event
from pipeline.stages.validate import validate_event
from pipeline.store.readmodel import ReadModel
from pipeline.topology import load_topology

TOPOLOGY = load_topology()
T0 = 1_800_000_000_000
# The Kafka topic project reads each event type from (the stage that emits it).
TOPIC_OF = {
    "intent.submitted": "ingested",
    "risk.approved": "validated",
    "intent.accepted": "validated",
    "intent.prioritised": "prioritised",
    "plan.created": "plans",
}
TOPICS = ("ingested", "validated", "prioritised", "plans", "executions")
_ULID = re.compile(rb"(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Z]{26}(?![0-9A-Za-z])")
_TEMPLATE_STRATEGY = "bench-template-strategy"


async def templates() -> list[list[Event]]:
    """Lifecycles made by the real stages: sells and buys of two sizes (9 events each)."""
    out: list[list[Event]] = []
    with tempfile.TemporaryDirectory(prefix="sep-bench-readmodel-") as tmp:
        venue = build_venues(TOPOLOGY, Path(tmp))["sim"]
        await venue.start()
        try:
            for n, (kind, amount) in enumerate(
                [("DISPOSE", "1"), ("ACQUIRE", "1"), ("DISPOSE", "2"), ("ACQUIRE", "3")]
            ):
                out.append(await _lifecycle(venue, n, kind, amount))
        finally:
            await venue.stop()
    return out


async def _lifecycle(venue: Any, offset: int, kind: str, amount: str) -> list[Event]:
    data = submission(
        TOPOLOGY,
        kind,
        "WETH",
        "USDC",
        amount,
        max_slippage="0.02",
        time_window_ms=300_000,
        client_intent_id=f"bench-{offset}",
        strategy_id=_TEMPLATE_STRATEGY,
    )
    key = _TEMPLATE_STRATEGY.encode()
    rec = Record("sep.intents.submitted", 0, offset, T0, key, orjson.dumps(data))
    topic = TOPOLOGY.stage("ingest").events_topic
    events = [decode_event(ingest_record(rec, MemoryTable(), T0, topic=topic).outputs[0].value)]
    events += [decode_event(o.value) for o in validate_event(events[0], TOPOLOGY, ("sim",), T0)]
    events.append(decode_event(prioritise_event(events[-1], TOPOLOGY, T0)[1].value))
    pools = {venue.name: await venue.pools()}
    events.append(decode_event(plan_output(events[-1], pools, TOPOLOGY, T0).value))
    assert events[-1].topic == "plan.created", events[-1].payload
    stage = build_execute(
        StageContext(TOPOLOGY, Settings(), venues={venue.name: venue}, clock=lambda: T0 + 5)
    )
    sent: list[Output] = []

    async def emit(output: Output) -> None:
        sent.append(output)

    await stage.process([Record("sep.plans", 0, 0, T0, None, encode_event(events[-1]))], emit)
    events += [decode_event(o.value) for o in sent]
    assert len(events) == 9, [e.topic for e in events]
    return events


def clone(template: Sequence[Event], at_ms: int, strategy: str) -> list[Event]:
    """The same lifecycle as another intent: every id fresh, created at ``at_ms``."""
    raw = [encode_event(e) for e in template]
    ids: dict[bytes, bytes] = {}
    for data in raw:
        for found in _ULID.findall(data):
            ids.setdefault(found, new_ulid(at_ms).encode())

    def renamed(data: bytes) -> bytes:
        data = _ULID.sub(lambda m: ids[m.group(0)], data)
        return data.replace(_TEMPLATE_STRATEGY.encode(), strategy.encode())

    shift = at_ms - T0
    return [
        e.model_copy(
            update={
                "timestamp": datetime.fromtimestamp(e.timestamp.timestamp() + shift / 1000, UTC)
            }
        )
        for e in (decode_event(renamed(data)) for data in raw)
    ]


def batches(
    intents: list[list[Event]],
    rate: float,
    batch_ms: float,
    lag_ms: tuple[float, float],
    dup: float,
    rng: random.Random,
) -> list[list[Event]]:
    """The batches project would see (see the module's docstring)."""
    timed: list[tuple[float, int, Event]] = []
    for i, events in enumerate(intents):
        arrived = i * 1000 / rate
        lag = rng.uniform(*lag_ms)
        jitter = {topic: rng.uniform(0, batch_ms) for topic in TOPICS}
        for e in events:
            topic = TOPIC_OF.get(e.topic, "executions")
            at = arrived if topic == "ingested" else arrived + lag + jitter[topic]
            timed.append((at, TOPICS.index(topic), e))
    by_batch: dict[int, list[tuple[float, int, Event]]] = {}
    for item in timed:
        by_batch.setdefault(int(item[0] // batch_ms), []).append(item)
    out = [
        [e for _, _, e in sorted(by_batch[k], key=lambda t: (t[1], t[0]))] for k in sorted(by_batch)
    ]
    redelivered: list[list[Event]] = []
    for k, batch in enumerate(out):
        redelivered.append(batch)
        if k >= 3 and rng.random() < dup:
            redelivered.append(out[k - 3])  # a batch three back, delivered again
    return redelivered


async def measure(url: str, count: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    shapes = await templates()
    intents = [
        clone(shapes[i % len(shapes)], T0 + i * 2, f"strategy-{rng.randrange(args.strategies)}")
        for i in range(count)
    ]
    stream = batches(
        intents, args.rate, args.batch_ms, (args.lag_ms, args.lag_ms * 4), args.dup, rng
    )
    applications = sum(len({e.correlation_id for e in b}) for b in stream) / count
    events = sum(len(b) for b in stream)

    model = ReadModel.connect(
        url,
        f"bench-{new_ulid()}:",
        quote_asset=TOPOLOGY.risk.quote_asset,
        change_stream=not args.no_change_stream,
    )
    redis = model.redis
    try:
        await model.apply(clone(shapes[0], T0 - 1000, "warm-up"), positions="mark")
        cpu0, stats0 = await redis.info("cpu"), await redis.info("commandstats")
        py0, wall0 = time.process_time(), time.monotonic()
        applied = 0
        for batch in stream:
            applied += await model.apply(batch, positions="mark")
        py1, wall1 = time.process_time(), time.monotonic()
        cpu1, stats1 = await redis.info("cpu"), await redis.info("commandstats")
        states = await model.state_counts()
    finally:
        await model.close()

    def redis_cpu(info: dict[str, Any]) -> float:
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    calls: dict[str, float] = {}
    usec: dict[str, float] = {}
    for name, now in stats1.items():
        before = stats0.get(name, {})
        if now["calls"] > before.get("calls", 0):
            command = name.removeprefix("cmdstat_")
            calls[command] = round((now["calls"] - before.get("calls", 0)) / count, 2)
            usec[command] = round((now["usec"] - before.get("usec", 0)) / count, 1)
    return {
        "machine": machine(),
        "intents": count,
        "events": events,
        "applied": applied,
        "batches": len(stream),
        "applications_per_intent": round(applications, 2),
        "states": states,
        "redis_cpu_ms_per_intent": round((redis_cpu(cpu1) - redis_cpu(cpu0)) * 1000 / count, 4),
        "python_cpu_ms_per_intent": round((py1 - py0) * 1000 / count, 4),
        "wall_s": round(wall1 - wall0, 2),
        "redis_calls_per_intent": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
        # Time inside each command (a script's includes the commands it calls).
        "redis_usec_per_intent": dict(sorted(usec.items(), key=lambda kv: -kv[1])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench readmodel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=10000, help="intents (10000)")
    parser.add_argument("--rate", type=float, default=600, help="intents/s arriving (600)")
    parser.add_argument("--batch-ms", type=float, default=25, help="a batch's arrivals (25)")
    parser.add_argument("--lag-ms", type=float, default=20, help="chain lag, min (20; max 4x)")
    parser.add_argument("--dup", type=float, default=0.02, help="batches redelivered (0.02)")
    parser.add_argument("--strategies", type=int, default=20, help="strategies (20)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--no-change-stream", action="store_true", help="without the change stream (its share)"
    )
    parser.add_argument("--redis", help="an existing Redis URL (default: start one)")
    args = parser.parse_args(argv)

    if args.redis:
        result = asyncio.run(measure(args.redis, args.count, args))
    else:
        from bench._services import redis_service

        with redis_service() as url:
            result = asyncio.run(measure(url, args.count, args))
    print(f"sep bench readmodel — {result['machine']}")
    print(
        f"{result['intents']} intents, {result['events']} events in {result['batches']} batches "
        f"({result['applications_per_intent']} per intent), {result['applied']} applied"
    )
    print(f"{'redis CPU ms/intent':>22} {result['redis_cpu_ms_per_intent']:>8}")
    print(f"{'python CPU ms/intent':>22} {result['python_cpu_ms_per_intent']:>8}")
    print(
        "redis calls/intent: "
        + ", ".join(f"{k} {v}" for k, v in result["redis_calls_per_intent"].items())
    )
    print(
        "redis us/intent in commands: "
        + ", ".join(f"{k} {v}" for k, v in result["redis_usec_per_intent"].items())
    )
    print(json_line(result))
    return 0
