"""``sep bench floor``: the Kafka floor of the pipeline's record contract, on this machine, now.

Six stages as plain batched aiokafka loops, no stage logic and no stores: each reads its input
in batches (``getmany``), decodes every record, writes the same number of event records per
intent as the platform's event contract, keyed by intent id, waits for the broker's acks of a
batch's outputs and only then commits the batch's input offsets; a project consumer reads every
stage's output topic.  What it costs is the contract's Kafka traffic and nothing else: the
reference that ``sep bench pipeline`` divides its own figures by, measured on the same broker in
the same run (this machine's speed drifts 2-3x within an hour; only same-run ratios compare).

Its topics are its own (``floor.<run>.*``, as many partitions as the pipeline's stage topics),
so nothing the pipeline left on the broker is read, and they are deleted afterwards.  The stage
processes are ``bench/_floor_stages.py`` children that report on stdout as JSON lines.

``--work`` makes it the floor of the work, not only of the traffic: each stage burns as much
CPU per intent as its own logic costs (``--work stages`` measures that first, in this process,
with ``sep bench stages --wire``'s code; or give microseconds, ``--work plan=140,execute=180``),
and ``--fuse`` runs ingest → execute as one loop, as the pipeline's fusion does.  Together
they are the simplest correct code doing the pipeline's stage work over its Kafka contract:
what its latency at a steady rate is on this machine says what any runtime could reach.  The
stores' CPU (Redis, PostgreSQL) is not in it unless given as ``project=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench._common import Steady, Throughput, cpu_figures, json_line, machine, pace, pct
from bench._cpu import CpuMeter, jit_cores, service_pids
from bench._floor_stages import STAGES, loops_of, topic
from pipeline.samples import random_submission
from pipeline.topology import load_topology


def stage_partitions() -> int:
    """As many partitions as the pipeline's stage topics have (one fact: topology.yaml)."""
    topology = load_topology()
    return max(
        topology.topic(name).partitions for stage in topology.stages for name in stage.inputs
    )


@dataclass
class FloorPool:
    """``procs`` stage processes on one broker, and what their project consumers report."""

    bootstrap: str
    procs: int
    work: dict[str, float] = field(default_factory=dict)  # CPU µs an intent, by stage
    fuse: bool = False
    one_consumer: bool = False  # one consumer a process for all its loops, as a worker's
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    done: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    assigned: dict[int, dict[str, int]] = field(default_factory=dict)
    _children: list[asyncio.subprocess.Process] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pids(self) -> set[int]:
        return {child.pid for child in self._children}

    async def start(self, partitions: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(topic(self.run, name), partitions, 1)
                    for name in (None, *(s for s, _ in STAGES))
                ]
            )
        finally:
            await admin.close()
        for index in range(self.procs):
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench._floor_stages",
                "--bootstrap",
                self.bootstrap,
                "--run",
                self.run,
                "--work",
                orjson.dumps(self.work).decode(),
                *(["--fuse"] if self.fuse else []),
                *(["--one-consumer"] if self.one_consumer else []),
                stdout=asyncio.subprocess.PIPE,
            )
            self._children.append(child)
            self._readers.append(asyncio.create_task(self._read(index, child)))
        await self._settled(partitions)

    async def _read(self, index: int, child: asyncio.subprocess.Process) -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            report = orjson.loads(line)
            if "assigned" in report:
                self.assigned[index] = report["assigned"]
            for run, n in report.get("done", {}).items():
                self.done[run] = self.done.get(run, 0) + n
            for run, kinds in report.get("latencies", {}).items():
                for kind, values in kinds.items():
                    self.latencies.setdefault(run, {}).setdefault(kind, []).extend(values)

    async def _settled(self, partitions: int, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        """Until every group has every partition assigned and every process has a share: a
        rebalance during the measurement would charge its pause to the floor."""
        if self.one_consumer:  # the submissions and every stage's topic
            expected = {f"floor-{self.run}-all": partitions * (1 + len(STAGES))}
        else:
            expected = {
                f"floor-{self.run}-{STAGES[steps[0]][0]}": partitions
                for steps in loops_of(self.fuse)
            }
            expected[f"floor-{self.run}-project"] = partitions * len(STAGES)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            reports = [self.assigned.get(i, {}) for i in range(self.procs)]
            if all(
                sum(r.get(g, 0) for r in reports) == n and all(r.get(g) for r in reports)
                for g, n in expected.items()
            ):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"floor groups not settled after {timeout:.0f}s: {self.assigned}")

    def _check_alive(self) -> None:
        dead = [c.returncode for c in self._children if c.returncode is not None]
        if dead:
            raise RuntimeError(f"a floor stage process exited (status {dead})")

    async def stop(self) -> None:
        for child in self._children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in self._children:
            try:
                await asyncio.wait_for(child.wait(), 15)
            except TimeoutError:
                child.kill()
                await child.wait()
        for reader in self._readers:
            reader.cancel()
        self._children.clear()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:  # best effort: a temporary broker goes anyway; an existing one is left tidy
            await admin.delete_topics(
                [topic(self.run, name) for name in (None, *(s for s, _ in STAGES))]
            )
        except Exception as exc:
            print(f"  (could not delete the floor topics: {exc!r})", file=sys.stderr)
        finally:
            await admin.close()

    async def submit(self, tag: str, payloads: Sequence[bytes], rate: float | None) -> float:
        """Produce one submission per payload (at ``rate``/s, or flat out); return the time
        of the first send.  The producer is the pipeline bench's, so both are loaded alike."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks=1, linger_ms=2, max_batch_size=512 * 1024
        )
        await producer.start()
        loop = asyncio.get_running_loop()
        futures = []
        started, t0 = time.time(), loop.time()
        try:
            for i, payload in enumerate(payloads):
                intent = f"intent-floor-{tag}-{i:07d}"
                # the payload is the raw submission, spliced in: one encode per intent, as a
                # producer's
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
                futures.append(
                    await producer.send(topic(self.run, None), value, key=intent.encode())
                )
                await pace(i + 1, rate, t0)
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return started

    async def wait_done(self, tag: str, count: int, timeout: float) -> float:  # noqa: ASYNC109
        """Until ``count`` intents of ``tag`` finished; return that time."""
        deadline = time.monotonic() + timeout
        while self.done.get(tag, 0) < count:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"floor: {self.done.get(tag, 0)} of {count} intents "
                    f"finished after {timeout:.0f}s"
                )
            await asyncio.sleep(0.02)
        return time.time()


WORK_KEYS = (*(name for name, _ in STAGES), "project")


def work_of(spec: str) -> dict[str, float]:
    """``--work``: comma-separated ``stage=µs`` (CPU microseconds an intent) and ``stages``
    (each stage's own logic, ingest → execute, measured now in memory by ``bench.stages``;
    a pair given as well wins): "" is none."""
    work: dict[str, float] = {}
    given: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "stages":
            work.update(measured_stages())
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep or name.strip() not in WORK_KEYS:
                raise ValueError(name)
            given[name.strip()] = float(value)
        except ValueError:
            raise ValueError(
                f"--work {spec!r}: expected 'stages' and/or stage=microseconds pairs, "
                f"stages being {', '.join(WORK_KEYS)}"
            ) from None
    return work | given


def measured_stages() -> dict[str, float]:
    """CPU microseconds an intent of each stage's own logic, ingest → execute, now
    (``sep bench stages --wire``'s measurement, batches of 200)."""
    from bench import stages

    print("floor: measuring the stages' own CPU (sep bench stages --wire)…", file=sys.stderr)
    measured = asyncio.run(stages.measure(2000, 200, 3, 300, wire=True))
    return {
        name: round(measured["stages_ms"][name] * 1000, 1)
        for name in WORK_KEYS
        if name in measured["stages_ms"]
    }


def payloads(count: int) -> list[bytes]:
    """Submissions as the pipeline bench sends them (same generator, sim venue)."""
    topology = load_topology()
    rng = random.Random(count)
    return [
        orjson.dumps(
            random_submission(
                topology,
                rng,
                strategy_id=f"floor-{i % 16}",
                client_intent_id=f"floor-{i}",
                venues=["sim"],
            )
        )
        for i in range(count)
    ]


async def throughput(pool: FloorPool, count: int, services: dict[int, str]) -> Throughput:
    """``count`` intents flat out: intents/s and CPU ms per intent by process group."""
    tag = uuid.uuid4().hex[:8]
    bodies = payloads(count)
    meter = CpuMeter(workers=pool.pids, services=services)
    meter.start()
    started = await pool.submit(tag, bodies, None)
    finished = await pool.wait_done(tag, count, timeout=max(120.0, count / 100))
    elapsed = finished - started
    seconds = meter.stop()
    per_intent, total, busy = cpu_figures(seconds, count, meter.window)
    return {
        "intents": count,
        "seconds": round(elapsed, 2),
        "intents_per_s": round(count / elapsed, 1),
        "completed": pool.done[tag],
        "cpu_ms_per_intent": per_intent,
        "cpu_ms_per_intent_total": total,
        "cores_busy": busy,
        "broker_jit_cores": round(jit_cores(seconds, meter.window), 2),
    }


async def steady(
    pool: FloorPool, rate: float, seconds: float, services: dict[int, str] | None = None
) -> Steady:
    """Submit -> plan's and execute's last event, at a steady rate, each stamped by the
    stage that made it as the pipeline's are (until session 16 the floor timed them on arrival
    at project, one hop more), and the CPU it took (as the pipeline bench's steady runs)."""
    tag, count = uuid.uuid4().hex[:8], int(rate * seconds)
    meter = CpuMeter(workers=pool.pids, services=services or {})
    meter.start()
    await pool.submit(tag, payloads(count), rate)
    await pool.wait_done(tag, count, timeout=120.0 + seconds)
    per_intent, total, busy = cpu_figures(meter.stop(), count, meter.window)
    plan = pool.latencies.get(tag, {}).get("plan", [])
    done = pool.latencies.get(tag, {}).get("completed", [])
    return {
        "rate": rate,
        "intents": count,
        "plan_p50_ms": round(pct(plan, 0.5), 1),
        "plan_p99_ms": round(pct(plan, 0.99), 1),
        "completed_p50_ms": round(pct(done, 0.5), 1),
        "completed_p99_ms": round(pct(done, 0.99), 1),
        "cpu_ms_per_intent": per_intent,
        "cpu_ms_per_intent_total": total,
        "cores_busy": busy,
    }


@dataclass(frozen=True)
class FloorResult:
    throughput: Throughput
    steady: list[Steady]


async def measure(
    bootstrap: str,
    *,
    procs: int,
    count: int,
    warmup: int,
    rates: Sequence[float],
    seconds: float,
    services: dict[int, str],
    work: dict[str, float] | None = None,
    fuse: bool = False,
    one_consumer: bool = False,
) -> FloorResult:
    """The whole floor run: topics, ``procs`` stage processes, warm-up, flat out, steady."""
    pool = FloorPool(bootstrap, procs, work or {}, fuse, one_consumer)
    what = f" (work {pool.work} µs an intent{', fused' if fuse else ''})" if work or fuse else ""
    print(f"floor: {procs} stage processes on floor.{pool.run}.*{what}…", file=sys.stderr)
    await pool.start(stage_partitions())
    try:
        if warmup:
            # Unmeasured: the broker's JIT and the processes' first batches (see the pipeline
            # bench's --warmup).
            print(f"floor: warming up, {warmup} intents flat out…", file=sys.stderr)
            await throughput(pool, warmup, services)
        print(f"floor: {count} intents flat out…", file=sys.stderr)
        flat = await throughput(pool, count, services)
        print(f"  {flat['intents_per_s']} intents/s", file=sys.stderr)
        latency = []
        for rate in rates:
            print(f"floor: steady {rate:g}/s for {seconds:g}s…", file=sys.stderr)
            latency.append(await steady(pool, rate, seconds, services))
    finally:
        await pool.stop()
    return FloorResult(flat, latency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sep bench floor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bootstrap",
        default="",
        help="an existing broker (default: start one, as the other benches do)",
    )
    parser.add_argument("--count", type=int, default=20_000, help="intents flat out")
    parser.add_argument("--warmup", type=int, default=2000, help="unmeasured intents first")
    parser.add_argument(
        "--rate",
        "--rates",
        dest="rates",
        type=float,
        nargs="*",
        default=[500.0],
        help="steady rates for latency (default 500)",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2, help="stage processes (default 2)")
    parser.add_argument(
        "--work",
        default="",
        metavar="SPEC",
        help="CPU each stage burns an intent: 'stages' (their own logic, measured first) and/or "
        "stage=microseconds pairs, e.g. 'plan=140,execute=180,project=300' (default: none)",
    )
    parser.add_argument(
        "--fuse", action="store_true", help="ingest → execute as one loop, as the pipeline"
    )
    parser.add_argument(
        "--one-consumer",
        action="store_true",
        help="one consumer a process for all its loops, as a pipeline worker has "
        "(default: a consumer, and a group, each)",
    )
    args = parser.parse_args(argv)
    work = work_of(args.work)

    def go(bootstrap: str) -> FloorResult:
        services = service_pids({"kafka": bootstrap})
        return asyncio.run(
            measure(
                bootstrap,
                procs=args.procs,
                count=args.count,
                warmup=args.warmup,
                rates=args.rates,
                seconds=args.seconds,
                services=services,
                work=work,
                fuse=args.fuse,
                one_consumer=args.one_consumer,
            )
        )

    if args.bootstrap:
        result = go(args.bootstrap)
    else:
        from bench._services import bench_services

        with bench_services() as settings:
            result = go(settings.kafka)
    t = result.throughput
    print(f"\nsep bench floor — {machine()}, {args.procs} stage processes")
    if work or args.fuse or args.one_consumer:
        print(
            f"stage work (CPU µs an intent): {work or 'none'}; fused: {args.fuse}; "
            f"one consumer: {args.one_consumer}"
        )
    print(f"flat out: {t['intents_per_s']:>8.1f} intents/s ({t['intents']} in {t['seconds']}s)")
    print(
        "CPU per intent: "
        + ", ".join(f"{g} {ms} ms" for g, ms in t["cpu_ms_per_intent"].items())
        + f"; ours {t['cpu_ms_per_intent_total']} ms"
    )
    for s in result.steady:
        print(
            f"steady {s['rate']:g}/s: submit→plan p50 {s['plan_p50_ms']} ms, p99 "
            f"{s['plan_p99_ms']} ms; submit→completed p50 {s['completed_p50_ms']} ms, "
            f"p99 {s['completed_p99_ms']} ms; CPU {s['cpu_ms_per_intent_total']} ms an "
            f"intent, {s['cores_busy']} cores busy"
        )
    print(
        json_line(
            {
                "bench": "floor",
                "machine": machine(),
                "procs": args.procs,
                "work_us": work,
                "fused": args.fuse,
                "one_consumer": args.one_consumer,
                "intents_per_s": t["intents_per_s"],
                "throughput": t,
                "steady": result.steady,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
