"""``sep bench runtime``: what our Kafka runtime itself costs per intent, against the floor.

A deliberate measurement tool, not a pipeline: the REAL worker runtime
(``pipeline.runtime.delivery``: ``KafkaRuntime`` with its one consumer, the topology's groups
and fusion, ``GroupRunner`` passes, ``KafkaSink``, the offset ledger and its commits, and a
worker's followers of whole topics) runs *stand-in* stage processors that have no stage logic:
each does exactly the per-record work of ``bench/_floor_stages.py`` (decode the input, skip
what is not the previous stage's last event, build and encode the floor's records) and emits
the floor's number of records per intent -- ingest 1, validate 2, prioritise 1, plan 1,
execute 4 -- on the stage's declared topic, keyed by intent id; the stand-in project reads
every topic and counts execute's last record.  So the workers' CPU per intent, less the
floor's in the same run on the same broker, is what our runtime adds to plain batched
aiokafka moving the same records.

    sep.intents.submitted ─► ingest ─► validate ─► prioritise ─► plan ─► execute ─► project
                    (Kafka)     (Kafka)  └── fused in memory, each still produced ──┘ (Kafka)

The worker processes are ``python -m bench.runtime --serve``, as many as ``--procs``, built as
``pipeline.runtime.worker.build_runtime`` builds a worker (uvloop, the GC settings, the
``Settings`` fetch waits, linger and fusion) without faust's lifecycle, stores or venues.
Followers stand in for the control, risk and pool feeds (same topics and fetch settings,
nothing applied).  Topics and groups are the run's own (``rt.<run>.sep.*``), deleted
afterwards, so many runs can share one broker (``--bootstrap``); without it a broker is
started for the run.  Figures are CPU only: on a shared machine wall time means nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import floor
from bench._common import cpu_figures, json_line, machine
from bench._cpu import CpuMeter, service_pids
from bench._floor_stages import STAGES, envelope
from pipeline.config import Settings
from pipeline.market.follower import TopicFollower
from pipeline.runtime import gc_tuning
from pipeline.runtime.delivery import patches
from pipeline.runtime.delivery.groups import StageGroup, StageNode, handoff_topics, plan_groups
from pipeline.runtime.delivery.kafka import KafkaRuntime
from pipeline.runtime.delivery.sink import KafkaSink
from pipeline.runtime.delivery.tables import TableSet
from pipeline.stages.base import Emit, Output, Record
from pipeline.topology import load_topology
from pipeline.topology.fusion import feedback_edges
from pipeline.topology.models import Topology

EVENTS = dict(STAGES)
"""Records per intent each stage writes: the floor's contract (one fact: _floor_stages)."""
PREVIOUS = {name: STAGES[i - 1][0] if i else None for i, (name, _) in enumerate(STAGES)}
REPORT_EVERY_S = 0.1
# The followers a worker running every stage has (pipeline/runtime/worker.py): the control
# feed, the risk feed (three topics, gathering) and the pool feed.
CONTROL, POOLS = "sep.control", "sep.market.pools"
RISK = ("sep.intents.validated", "sep.plans", "sep.executions")


def run_topology(run: str) -> Topology:
    """topology.yaml with every topic renamed ``rt.<run>.<name>`` (no lanes): the stages,
    groups and fusion are the file's."""
    topology = load_topology()
    name = {t.name: f"rt.{run}.{t.name}" for t in topology.topics}
    return topology.model_copy(
        update={
            "lanes": None,
            "topics": tuple(t.model_copy(update={"name": name[t.name]}) for t in topology.topics),
            "stages": tuple(
                s.model_copy(
                    update={
                        "inputs": tuple(name[t] for t in s.inputs),
                        "outputs": tuple(name[t] for t in s.outputs),
                    }
                )
                for s in topology.stages
            ),
        }
    )


# -- the worker process -------------------------------------------------------------------


class StandIn:
    """A stage processor with no stage logic: the floor stage's per-record work, emitted
    through the runtime (see the module docstring)."""

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self._target = target
        self._events = EVENTS[name]
        self._previous = f"{PREVIOUS[name]}.last" if PREVIOUS[name] else None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        name, events, target = self.name, self._events, self._target
        for record in records:
            # {"type", "correlationId", "seq", "submittedNs", "payload", ...} -> `events`
            # envelopes of this stage, the last one typed "<stage>.last" (as the floor's)
            event = orjson.loads(record.value)
            if self._previous and event["type"] != self._previous:
                continue  # plan's execution reports, validate's first event, ...
            key = record.key or b""
            for k in range(events):
                await emit(Output(target, key, envelope(event, name, k, events)))


@dataclass
class Project:
    """The stand-in project: reads every topic, counts each intent's execute.last once."""

    name: str = "project"
    done: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        now = time.time_ns()
        for record in records:
            event = orjson.loads(record.value)
            kind = event.get("type")
            if kind not in ("plan.last", "execute.last"):
                continue
            if (kind, event["correlationId"]) in self._seen:
                continue  # redelivered after a rebalance: counted once
            self._seen.add((kind, event["correlationId"]))
            self.latencies.append((now - event["submittedNs"]) / 1e6)  # as the floor does
            if kind == "execute.last":
                self.done[event["run"]] = self.done.get(event["run"], 0) + 1


class Follower(TopicFollower):
    """A follower of whole topics that applies nothing (the feeds' fetches, not their logic)."""

    def apply(self, value: bytes) -> bool:
        return False

    async def start_offsets(
        self, consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return dict(await consumer.beginning_offsets(list(tps)))


def build(topology: Topology, settings: Settings) -> tuple[KafkaRuntime, Project]:
    """A worker running every stage, as ``build_runtime`` assembles one, with stand-ins."""
    patches.check()
    partitions = {t.name: t.partitions for t in topology.topics}
    project = Project()
    groups = []
    wanted = [s.name for s in topology.stages if not s.singleton]
    for chain in plan_groups(topology, wanted, settings.fusion):
        nodes = [
            StageNode(s, project if s.name == "project" else StandIn(s.name, s.outputs[0]))
            for s in chain
        ]
        edges = feedback_edges(chain, topology) if settings.fusion_feedback else ()
        groups.append(StageGroup(nodes, handoff_topics(chain), partitions, edges))
    group = f"{topology.app.id}-{topology.topics[0].name}"
    tables = TableSet(group, topic_partitions=partitions)
    sink = KafkaSink(
        settings.kafka,
        client_id=f"{group}-worker",
        linger_ms=settings.producer_linger_ms,
        partitions=partitions,
    )
    runtime = KafkaRuntime(
        settings.kafka,
        group,
        groups,
        tables,
        sink,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        fetch_idle_wait_ms=settings.fetch_idle_wait_ms,
    )
    return runtime, project


async def serve(bootstrap: str, run: str, followers: bool) -> None:
    """One worker process, until SIGTERM; reports on stdout as the floor's processes do."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    settings = Settings(kafka=bootstrap)
    topology = run_topology(run)
    runtime, project = build(topology, settings)
    named = {t.name.split(".", 2)[2]: t for t in topology.topics}
    feeds: list[TopicFollower] = []
    if followers:
        feeds = [
            Follower(bootstrap, named[CONTROL].name, partitions=named[CONTROL].partitions),
            Follower(
                bootstrap,
                {named[t].name: named[t].partitions for t in RISK},
                gathering=patches.Gathering(),
            ),
            Follower(bootstrap, named[POOLS].name, partitions=named[POOLS].partitions),
        ]
    for feed in feeds:
        await feed.start()
    await runtime.sink.start()
    gc_tuning.freeze()
    await runtime.start()
    last = -1
    try:
        while not stop.is_set() and runtime.fatal is None:
            line: dict[str, Any] = {}
            consumer = runtime.consumer
            assigned = len(consumer.assignment()) if consumer is not None else 0
            if assigned != last:
                line["assigned"] = last = assigned
            if project.done:
                line["done"], project.done = project.done, {}
            if line:
                sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
                sys.stdout.buffer.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_EVERY_S)
    finally:
        # What the sink sent, and how much of it through producer.send (when known).
        sink = runtime.snapshot().get("sink")
        sys.stdout.buffer.write(orjson.dumps({"sink": sink}) + b"\n")
        sys.stdout.buffer.flush()
        await runtime.stop()
        for feed in feeds:
            await feed.stop()
    if runtime.fatal is not None:
        raise SystemExit(f"runtime failed: {runtime.fatal!r}")


def serve_main(bootstrap: str, run: str, followers: bool) -> None:
    import uvloop  # as pipeline.runtime.worker.run_worker: the workers' event loop

    gc_tuning.configure(Settings().gc_threshold)
    uvloop.run(serve(bootstrap, run, followers))


# -- the parent ---------------------------------------------------------------------------


@dataclass
class Workers:
    """``procs`` worker processes on one broker, and what their project stand-ins report."""

    bootstrap: str
    procs: int
    followers: bool = True
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    done: dict[str, int] = field(default_factory=dict)
    assigned: dict[int, int] = field(default_factory=dict)
    _children: list[asyncio.subprocess.Process] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def topology(self) -> Topology:
        return run_topology(self.run)

    @property
    def pids(self) -> set[int]:
        return {child.pid for child in self._children}

    async def start(self) -> None:
        topology = self.topology
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        t.name, t.partitions, 1, topic_configs={"cleanup.policy": t.cleanup_policy}
                    )
                    for t in topology.topics
                ]
            )
        finally:
            await admin.close()
        for index in range(self.procs):
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.runtime",
                "--serve",
                "--bootstrap",
                self.bootstrap,
                "--run",
                self.run,
                *([] if self.followers else ["--no-followers"]),
                stdout=asyncio.subprocess.PIPE,
            )
            self._children.append(child)
            self._readers.append(asyncio.create_task(self._read(index, child)))
        # Settled when every input partition of the worker group is assigned, each worker
        # holding some: a rebalance during the measurement would charge its pause here.
        wanted = {t for s in topology.stages if not s.singleton for t in s.inputs}
        total = sum(topology.topic(t).partitions for t in wanted)
        deadline = time.monotonic() + 90
        while not (
            sum(self.assigned.values()) == total
            and len(self.assigned) == self.procs
            and all(self.assigned.values())
        ):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"runtime workers not settled: {self.assigned} of {total}")
            await asyncio.sleep(0.2)

    async def _read(self, index: int, child: asyncio.subprocess.Process) -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            report = orjson.loads(line)
            if "assigned" in report:
                self.assigned[index] = report["assigned"]
            for run, n in report.get("done", {}).items():
                self.done[run] = self.done.get(run, 0) + n
            if report.get("sink"):
                print(f"  worker {index} sink: {report['sink']}", file=sys.stderr)

    def _check_alive(self) -> None:
        dead = [c.returncode for c in self._children if c.returncode is not None]
        if dead:
            raise RuntimeError(f"a runtime worker exited (status {dead})")

    async def stop(self) -> None:
        for child in self._children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in self._children:
            try:
                await asyncio.wait_for(child.wait(), 20)
            except TimeoutError:
                child.kill()
                await child.wait()
        await asyncio.wait(self._readers, timeout=5)  # their last lines
        for reader in self._readers:
            reader.cancel()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:  # best effort, as the floor's
            await admin.delete_topics([t.name for t in self.topology.topics])
        except Exception as exc:
            print(f"  (could not delete the run's topics: {exc!r})", file=sys.stderr)
        finally:
            await admin.close()

    async def submit(self, tag: str, payloads: Sequence[bytes]) -> None:
        """The floor's submissions (``FloorPool.submit``'s records), flat out."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks=1, linger_ms=2, max_batch_size=512 * 1024
        )
        await producer.start()
        target = f"rt.{self.run}.sep.intents.submitted"
        futures = []
        try:
            for i, payload in enumerate(payloads):
                intent = f"intent-rt-{tag}-{i:07d}"
                value = (
                    b'{"type":"submitted","seq":0,"run":"'
                    + tag.encode()
                    + b'","correlationId":"'
                    + intent.encode()
                    + b'","submittedNs":'
                    + str(time.time_ns()).encode()
                    + b',"payload":'
                    + payload
                    + b"}"
                )
                futures.append(await producer.send(target, value, key=intent.encode()))
                if i % 1000 == 0:
                    await asyncio.sleep(0)
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def throughput(self, count: int, services: dict[int, str]) -> dict[str, Any]:
        """``count`` intents flat out: CPU ms per intent by process group."""
        tag = uuid.uuid4().hex[:8]
        bodies = floor.payloads(count)
        meter = CpuMeter(workers=self.pids, services=services)
        meter.start()
        await self.submit(tag, bodies)
        deadline = time.monotonic() + max(120.0, count / 50)
        while self.done.get(tag, 0) < count:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"runtime: {self.done.get(tag, 0)} of {count} intents done")
            await asyncio.sleep(0.02)
        per_intent, _ours, busy = cpu_figures(meter.stop(), count, meter.window)
        return {"intents": count, "cpu_ms_per_intent": per_intent, "cores_busy": busy}


async def measure(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    services = service_pids({"kafka": bootstrap})
    result: dict[str, Any] = {}
    if not args.floor_only:
        workers = Workers(bootstrap, args.procs, followers=not args.no_followers)
        print(f"runtime: {args.procs} workers on rt.{workers.run}.*…", file=sys.stderr)
        await workers.start()
        try:
            if args.warmup:
                await workers.throughput(args.warmup, services)
            print(f"runtime: {args.count} intents flat out…", file=sys.stderr)
            result["runtime"] = await workers.throughput(args.count, services)
        finally:
            await workers.stop()
    if not args.no_floor:
        # After the runtime's workers stopped, as in ``sep bench pipeline``.
        try:
            flat = await floor.measure(
                bootstrap,
                procs=args.procs,
                count=args.floor_count or args.count,
                warmup=args.warmup,
                rates=(),
                seconds=0,
                services=services,
            )
        except TimeoutError as exc:  # a starved machine: the runtime's figures still stand
            print(f"floor: {exc}", file=sys.stderr)
            return result
        result["floor"] = {
            "intents": flat.throughput["intents"],
            "cpu_ms_per_intent": flat.throughput["cpu_ms_per_intent"],
            "cores_busy": flat.throughput["cores_busy"],
        }
    return result


@contextlib.contextmanager
def kafka_only() -> Iterator[str]:
    """A broker of the run's own (only Kafka: the stand-ins need no store)."""
    from pipeline.devstack.kafka import KafkaBroker
    from pipeline.devstack.ports import choose_port

    with tempfile.TemporaryDirectory(prefix="sep-bench-runtime-") as tmp:
        port = choose_port(0)
        broker = KafkaBroker(
            Path(tmp) / "kafka", port, controller_port=choose_port(0, taken={port})
        )
        broker.start()
        try:
            asyncio.run(broker.wait_healthy())
            yield broker.bootstrap
        finally:
            broker.stop()


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nsep bench runtime — {machine()}, {args.procs} worker processes")
    print(f"{'':>10}   CPU ms per intent: {'workers':>9} {'kafka':>9}")
    ratio: dict[str, float | None] = {}
    for name in ("runtime", "floor"):
        if name in result:
            cpu = result[name]["cpu_ms_per_intent"]
            print(
                f"{name:>10}   {'':19}{cpu.get('workers', 0.0):>9.3f} {cpu.get('kafka', 0.0):>9.3f}"
            )
    if "runtime" in result and "floor" in result:
        for group in ("workers", "kafka"):
            ours = result["runtime"]["cpu_ms_per_intent"].get(group)
            base = result["floor"]["cpu_ms_per_intent"].get(group)
            ratio[group] = round(ours / base, 2) if ours is not None and base else None
        print(f"{'runtime / floor':>15}   workers {ratio['workers']}x, kafka {ratio['kafka']}x")
    print(json_line({"bench": "runtime", "machine": machine(), **result, "ratio": ratio}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench runtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bootstrap", default="", help="an existing broker (default: start one)")
    parser.add_argument("--count", type=int, default=20_000, help="intents flat out")
    parser.add_argument("--floor-count", type=int, default=0, help="the floor's (default --count)")
    parser.add_argument("--warmup", type=int, default=2000, help="unmeasured intents first")
    parser.add_argument("--procs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--no-followers", action="store_true", help="workers without the stand-in feeds"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no-floor", action="store_true", help="the runtime only")
    which.add_argument("--floor-only", action="store_true", help="the floor only")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:  # a worker process of the run (started by the parent below)
        serve_main(args.bootstrap, args.run, not args.no_followers)
        return 0
    if args.bootstrap:
        result = asyncio.run(measure(args, args.bootstrap))
    else:
        with kafka_only() as bootstrap:
            result = asyncio.run(measure(args, bootstrap))
    _print(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
