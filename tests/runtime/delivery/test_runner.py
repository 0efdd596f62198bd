"""The runtime's wiring without a broker: batch -> processor -> outputs acknowledged ->
offsets committable; a crash mid-batch commits nothing of it; fused stages hand over in
memory and still write every topic; a later stage's output an earlier one reads is fed back
in memory to the next pass."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from pipeline.models.events import Event
from pipeline.runtime.delivery.groups import StageGroup, StageNode, partition_for
from pipeline.runtime.delivery.lanes import Lane, PassSizer
from pipeline.runtime.delivery.ledger import OffsetLedger
from pipeline.runtime.delivery.runner import GroupRunner
from pipeline.runtime.delivery.safety import FailureCounter
from pipeline.runtime.delivery.sink import Headers
from pipeline.runtime.delivery.tables import ChangelogTable
from pipeline.stages.base import Emit, Output, Record
from pipeline.topology.fusion import FeedbackEdge
from pipeline.topology.models import StageSpec

PARTITIONS = {"in": 4, "mid": 4, "out": 4, "sep.deadletter": 1, "cl": 4}


class Upper:
    """A stage that upper-cases each value onto its output topic, remembering each key."""

    def __init__(self, name: str, out: str, table: ChangelogTable | None = None) -> None:
        self.name, self.out, self.table = name, out, table
        self.seen: list[list[bytes]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        self.seen.append([r.value for r in records])
        for r in records:
            if self.table is not None:
                self.table.set((r.key or b"").decode(), "done", r)
            await emit(Output(self.out, r.key or b"", r.value.upper() + b"!"))


class ControlledSink:
    """Acknowledges when the test says so (or fails), like a broker would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.acks: list[asyncio.Future[None]] = []

    async def send(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers = (),
        event: Event | None = None,
    ) -> Any:
        self.sent.append((topic, key, value, partition))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    def ack_all(self, error: Exception | None = None) -> None:
        for ack in self.acks:
            if not ack.done():
                if error is None:
                    ack.set_result(None)
                else:
                    ack.set_exception(error)


def spec(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> StageSpec:
    return StageSpec(
        name=name,
        function="x:y",
        inputs=inputs,
        outputs=outputs,
        batch={"max": 100, "within_ms": 0},
    )


def records(n: int, partition: int = 0, start: int = 0) -> list[Record]:
    return [
        Record("in", partition, start + i, 0, f"k{start + i}".encode(), f"v{i}".encode())
        for i in range(n)
    ]


async def run_one(runner: GroupRunner) -> asyncio.Task[None]:
    task = asyncio.create_task(runner.run())
    for _ in range(50):
        await asyncio.sleep(0)
    return task


async def test_offsets_become_committable_only_after_the_outputs_are_acknowledged() -> None:
    stage = Upper("a", "out")
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    group = StageGroup([StageNode(spec("a", ("in",), ("out",)), stage)], [], PARTITIONS)
    runner = GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None)
    batch = ledger.open({("in", 0): 3}, slices=1)
    runner.put(batch, records(3))
    task = await run_one(runner)
    assert stage.seen == [[b"v0", b"v1", b"v2"]]
    assert [s[2] for s in sink.sent] == [b"V0!", b"V1!", b"V2!"]
    assert ledger.committable() == {}  # processed, but not acknowledged yet
    sink.ack_all()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ledger.committable() == {("in", 0): 3}
    task.cancel()


async def test_a_batch_whose_outputs_fail_commits_nothing_and_stops_the_worker() -> None:
    failures: list[BaseException] = []
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    group = StageGroup([StageNode(spec("a", ("in",), ("out",)), Upper("a", "out"))], [], PARTITIONS)
    runner = GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=failures.append)
    runner.put(ledger.open({("in", 0): 3}, slices=1), records(3))
    task = await run_one(runner)
    sink.ack_all(error=RuntimeError("broker gone"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert ledger.committable() == {}
    assert ledger.blocked
    assert [repr(e) for e in failures] == ["RuntimeError('broker gone')"]
    task.cancel()


async def test_a_crash_mid_batch_settles_nothing() -> None:
    class Hangs(Upper):
        async def process(self, records: Sequence[Record], emit: Emit) -> None:
            await emit(Output("out", b"k", b"first"))
            await asyncio.Event().wait()  # never finishes: the worker is stopped meanwhile

    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    group = StageGroup([StageNode(spec("a", ("in",), ("out",)), Hangs("a", "out"))], [], PARTITIONS)
    runner = GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None)
    runner.put(ledger.open({("in", 0): 3}, slices=1), records(3))
    task = await run_one(runner)
    sink.ack_all()  # even the output that was sent is acknowledged
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ledger.committable() == {}
    assert not await ledger.drain(0.01)


async def test_fused_stages_hand_over_in_memory_and_still_write_every_topic() -> None:
    table = ChangelogTable("seen", "cl", "")
    first, second = Upper("a", "mid", table), Upper("b", "out")
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    group = StageGroup(
        [
            StageNode(spec("a", ("in",), ("mid",)), first, [table]),
            StageNode(spec("b", ("mid",), ("out",)), second),
        ],
        ["mid"],
        PARTITIONS,
    )
    assert group.inputs == ("in",)  # b's input comes from a, not from Kafka
    runner = GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None)
    runner.put(ledger.open({("in", 0): 2}, slices=1), records(2))
    task = await run_one(runner)
    assert second.seen == [[b"V0!", b"V1!"]]
    by_topic = {t: [(k, v, p) for tt, k, v, p in sink.sent if tt == t] for t in PARTITIONS}
    # The handed-over records are on the partition the producer is told to use.
    assert by_topic["mid"] == [
        (b"k0", b"V0!", partition_for(b"k0", 4)),
        (b"k1", b"V1!", partition_for(b"k1", 4)),
    ]
    assert [v for _, v, _ in by_topic["out"]] == [b"V0!!", b"V1!!"]
    # The table's changelog goes out with the batch, on the input record's partition.
    assert by_topic["cl"] == [(b"k0", b"done", 0), (b"k1", b"done", 0)]
    sink.ack_all()
    for _ in range(3):
        await asyncio.sleep(0)
    assert ledger.committable() == {("in", 0): 2}
    task.cancel()


async def test_each_fused_stage_gets_only_its_own_kafka_inputs_the_first_one_too() -> None:
    # Ingest fused before the planner: the planner's reports (read from Kafka, no feedback)
    # are in the same pass, and ingest must not take them for submissions.
    first, second = Upper("a", "mid"), Planner()
    sink, ledger = ControlledSink(), OffsetLedger()
    group = StageGroup(
        [
            StageNode(spec("a", ("in",), ("mid",)), first),
            StageNode(spec("b", ("mid", "fb"), ("out",)), second),
        ],
        ["mid"],
        {**PARTITIONS, "fb": 4},
    )
    assert group.inputs == ("in", "fb")
    runner = GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None)
    report = Record("fb", 0, 7, 0, b"k0", b"report")
    await runner.run_pass([*records(1), report])
    assert first.seen == [[b"v0"]]
    assert second.seen == [[("fb", b"report", 7), ("mid", b"V0!", -1)]]


class Planner:
    """Reads ``in`` and ``fb`` (what a later stage writes), answers ``in`` records only."""

    name = "a"

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, bytes, int]]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        self.seen.append([(r.topic, r.value, r.offset) for r in records])
        for r in records:
            if r.topic == "in":
                await emit(Output("mid", r.key or b"", r.value.upper()))


class Executor(Upper):
    """Reports each record on ``fb``; keeps its emit to report again after the pass."""

    def __init__(self) -> None:
        super().__init__("b", "fb")
        self.emit: Emit | None = None

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        self.emit = emit
        await super().process(records, emit)


def feedback_runner(
    planner: Planner, executor: Executor, sink: ControlledSink, ledger: OffsetLedger
) -> GroupRunner:
    group = StageGroup(
        [
            StageNode(spec("a", ("in", "fb"), ("mid",)), planner),
            StageNode(spec("b", ("mid",), ("fb",)), executor),
        ],
        ["mid"],
        {**PARTITIONS, "fb": 4},
        (FeedbackEdge("fb", writer=1, reader=0),),
    )
    assert group.inputs == ("in",)  # fb is not consumed from Kafka
    assert group.kafka_inputs_of(0) == ("in",)
    return GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None)


async def test_a_later_stage_output_is_fed_back_to_the_earlier_reader_on_the_next_pass() -> None:
    planner, executor = Planner(), Executor()
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = feedback_runner(planner, executor, sink, ledger)
    assert await runner.run_pass(records(2)) is not None
    assert planner.seen == [[("in", b"v0", 0), ("in", b"v1", 1)]]
    # Still produced onto its topic, on the partition the producer is told to use.
    assert [(t, k, v) for t, k, v, _ in sink.sent if t == "fb"] == [
        ("fb", b"k0", b"V0!"),
        ("fb", b"k1", b"V1!"),
    ]
    await runner.run_pass(records(1, start=2))
    # The first pass's reports come first in the next pass, before its Kafka records.
    assert planner.seen[1] == [("fb", b"V0!", -1), ("fb", b"V1!", -1), ("in", b"v0", 2)]
    # A report emitted after its pass (a late receipt) reaches the reader in the next pass.
    assert executor.emit is not None
    await executor.emit(Output("fb", b"k9", b"late"))
    await runner.run_pass([])
    assert planner.seen[2] == [("fb", b"V0!", -1), ("fb", b"late", -1)]
    assert len(planner.seen) == 3  # each report once


async def test_fed_back_records_settle_no_offsets_and_start_no_pass_alone() -> None:
    planner, executor = Planner(), Executor()
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = feedback_runner(planner, executor, sink, ledger)
    runner.put(ledger.open({("in", 0): 2}, slices=1), records(2))
    task = await run_one(runner)
    assert len(planner.seen) == 1
    sink.ack_all()
    for _ in range(3):
        await asyncio.sleep(0)
    assert ledger.committable() == {("in", 0): 2}
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(planner.seen) == 1  # two reports kept, but no pass for them alone
    runner.put(ledger.open({("in", 0): 3}, slices=1), records(1, start=2))
    for _ in range(20):
        await asyncio.sleep(0)
    assert [t for t, _, _ in planner.seen[1]] == ["fb", "fb", "in"]
    task.cancel()


async def test_a_revoke_drops_queued_slices_unprocessed_and_commits_none_of_them() -> None:
    stage = Upper("a", "out")
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    group = StageGroup([StageNode(spec("a", ("in",), ("out",)), stage)], [], PARTITIONS)
    runner = GroupRunner(group, sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None)
    runner.put(ledger.open({("in", 0): 3}, slices=1), records(3))  # never started
    assert runner.abandon_queued() == 3
    task = await run_one(runner)
    assert stage.seen == []
    assert await runner.finish_running(0.1)
    assert ledger.committable() == {}
    task.cancel()


# ----------------------------------------------------------------------------- lanes


LANE_PARTITIONS = {"fast": 4, "bulk": 4, "out": 4, "sep.deadletter": 1}
TWO_LANES = (Lane("fast", 8, 0.0), Lane("bulk", 1, 0.25))


class Gated(Upper):
    """Processes its first pass at once, every later one when the test opens the gate."""

    def __init__(self) -> None:
        super().__init__("a", "out")
        self.gate = asyncio.Event()

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        if self.seen:
            await self.gate.wait()
        await super().process(records, emit)


def lane_records(topic: str, n: int, partition: int = 0) -> list[Record]:
    return [
        Record(topic, partition, i, 0, f"{topic}{i}".encode(), f"{topic}{i}".encode())
        for i in range(n)
    ]


def lane_runner(stage: Upper, sink: ControlledSink, ledger: OffsetLedger) -> GroupRunner:
    spec_ = StageSpec(
        name="a",
        function="x:y",
        inputs=("fast", "bulk"),
        outputs=("out",),
        batch={"max": 4, "within_ms": 0},
    )
    group = StageGroup([StageNode(spec_, stage)], [], LANE_PARTITIONS)
    return GroupRunner(
        group,
        sink,
        ledger,
        counter=FailureCounter(),
        on_fatal=lambda e: None,
        lanes=TWO_LANES,
        sizer=PassSizer(10.0),
    )


async def test_urgent_records_overtake_and_no_offset_passes_a_routine_record_still_queued() -> None:
    stage, sink, ledger = Gated(), ControlledSink(), OffsetLedger()
    ledger.assign([("fast", 0), ("bulk", 0)])
    runner = lane_runner(stage, sink, ledger)
    # Fetched first: six routine records; then two urgent ones.
    first = ledger.open({("bulk", 0): 6}, slices=1)
    runner.put(first, lane_records("bulk", 6))
    second = ledger.open({("fast", 0): 2}, slices=1)
    runner.put(second, lane_records("fast", 2))
    task = await run_one(runner)
    # A pass of 4: both urgent records first, then bulk's share (its minimum and the rest).
    assert stage.seen == [[b"fast0", b"fast1", b"bulk0", b"bulk1"]]
    sink.ack_all()
    for _ in range(5):
        await asyncio.sleep(0)
    # The urgent batch is done, but bulk2..5 of the batch fetched before it are not: no
    # offset may be committed past them, so neither batch's offsets are.
    assert second.done.is_set()
    assert not first.done.is_set()
    assert ledger.committable() == {}
    stage.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    sink.ack_all()
    for _ in range(20):
        await asyncio.sleep(0)
    assert stage.seen[1:] == [[b"bulk2", b"bulk3", b"bulk4", b"bulk5"]]
    assert ledger.committable() == {("bulk", 0): 6, ("fast", 0): 2}
    assert ledger.inflight == 0
    assert runner.lane_stats["fast"].records == 2
    assert runner.lane_stats["bulk"].records == 6
    task.cancel()


async def test_a_slice_spanning_lanes_settles_only_when_every_lane_took_its_part() -> None:
    stage, sink, ledger = Gated(), ControlledSink(), OffsetLedger()
    ledger.assign([("fast", 0), ("bulk", 0)])
    runner = lane_runner(stage, sink, ledger)
    batch = ledger.open({("bulk", 0): 5, ("fast", 0): 1}, slices=1)
    runner.put(batch, lane_records("bulk", 5) + lane_records("fast", 1))
    task = await run_one(runner)
    assert stage.seen == [[b"fast0", b"bulk0", b"bulk1", b"bulk2"]]
    sink.ack_all()
    for _ in range(5):
        await asyncio.sleep(0)
    # bulk3, bulk4 are in the next pass, held at the gate: not processed, not committable.
    assert ledger.committable() == {}
    assert runner.lane_depths == {"fast": 0, "bulk": 0}
    stage.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    sink.ack_all()
    for _ in range(20):
        await asyncio.sleep(0)
    assert ledger.committable() == {("bulk", 0): 5, ("fast", 0): 1}
    task.cancel()


async def test_a_revoke_abandons_every_lane_part_and_commits_none_of_them() -> None:
    stage, sink, ledger = Gated(), ControlledSink(), OffsetLedger()
    ledger.assign([("fast", 0), ("bulk", 0)])
    runner = lane_runner(stage, sink, ledger)
    batch = ledger.open({("bulk", 0): 9, ("fast", 0): 1}, slices=1)
    runner.put(batch, lane_records("bulk", 9) + lane_records("fast", 1))
    task = await run_one(runner)  # a pass of 4, then the next 4 held at the gate
    assert runner.abandon_queued() == 2
    sink.ack_all()
    stage.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    sink.ack_all()
    for _ in range(20):
        await asyncio.sleep(0)
    assert batch.done.is_set()
    assert ledger.committable() == {}  # abandoned: fetched again by the next owner
    assert runner.depth == 0
    task.cancel()


async def test_the_runner_asks_to_pause_a_routine_lane_with_more_than_a_pass_queued() -> None:
    stage, sink, ledger = Gated(), ControlledSink(), OffsetLedger()
    ledger.assign([("fast", 0), ("bulk", 0)])
    runner = lane_runner(stage, sink, ledger)
    runner.put(ledger.open({("bulk", 0): 4}, slices=1), lane_records("bulk", 4))
    assert runner.lanes_to_pause() == set()  # a pass (4) takes them all
    runner.put(ledger.open({("fast", 0): 50}, slices=1), lane_records("fast", 50))
    runner.put(ledger.open({("bulk", 0): 5}, slices=1), lane_records("bulk", 1))
    assert runner.lanes_to_pause() == {"bulk"}  # never the first lane


class GatedTail(Upper):
    """A fused group's last stage that waits for the test's word before each pass."""

    def __init__(self) -> None:
        super().__init__("b", "out")
        self.gates: list[asyncio.Event] = []
        self.started: list[list[bytes]] = []
        self.fail = False

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        self.started.append([r.value for r in records])
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail:
            raise RuntimeError("venue gone")
        await super().process(records, emit)


def tail_group(head: Upper, tail: GatedTail) -> StageGroup:
    """``head`` fused with ``tail``, its last stage."""
    return StageGroup(
        [
            StageNode(spec("a", ("in",), ("mid",)), head),
            StageNode(spec("b", ("mid",), ("out",)), tail),
        ],
        ["mid"],
        PARTITIONS,
    )


def tail_runner(
    head: Upper, tail: GatedTail, sink: ControlledSink, ledger: OffsetLedger, **kwargs: Any
) -> GroupRunner:
    return GroupRunner(
        tail_group(head, tail),
        sink,
        ledger,
        counter=FailureCounter(),
        pipelined_tail=True,
        **kwargs,
    )


class RefusingTails(ControlledSink):
    """Takes the heads' outputs ("mid") always; refuses the tails' outputs and their dead
    letters alike while ``refuse`` is set."""

    def __init__(self, *, refuse: bool) -> None:
        super().__init__()
        self.refuse = refuse

    async def send(self, topic: str, key: bytes, value: bytes | None, **kw: Any) -> Any:
        if self.refuse and topic != "mid":
            raise RuntimeError("producer closed")
        return await super().send(topic, key, value, **kw)


async def two_passes_behind_a_tail(runner: GroupRunner, ledger: OffsetLedger) -> asyncio.Task[None]:
    """A pass of one record whose tail waits at its gate, then two more passes of one."""
    runner.put(ledger.open({("in", 0): 1}, slices=1), records(1))
    task = await run_one(runner)
    for offset in (1, 2):
        runner.put(ledger.open({("in", 0): offset + 1}, slices=1), records(1, start=offset))
        await settle_loop()
    return task


async def settle_loop() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_pipelined_tail_lets_the_next_pass_run_and_its_pass_settles_after_it() -> None:
    head, tail = Upper("a", "mid"), GatedTail()
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = tail_runner(head, tail, sink, ledger, on_fatal=lambda e: None)
    runner.put(ledger.open({("in", 0): 2}, slices=1), records(2))
    task = await run_one(runner)
    runner.put(ledger.open({("in", 0): 4}, slices=1), records(2, start=2))
    await settle_loop()
    # The second pass's head ran while the first pass's tail waits at its gate ...
    assert head.seen == [[b"v0", b"v1"], [b"v0", b"v1"]]
    # ... and the second tail has not started: tails run in order.
    assert tail.started == [[b"V0!", b"V1!"]]
    sink.ack_all()  # every output sent so far (the heads') acknowledged
    await settle_loop()
    assert ledger.committable() == {}  # the first pass's tail has not run: nothing settles
    tail.gates[0].set()
    await settle_loop()
    assert tail.started == [[b"V0!", b"V1!"], [b"V0!", b"V1!"]]
    sink.ack_all()
    await settle_loop()
    assert ledger.committable() == {("in", 0): 2}  # the first pass, and only it
    tail.gates[1].set()
    await settle_loop()
    sink.ack_all()
    await settle_loop()
    assert ledger.committable() == {("in", 0): 4}
    assert [v for t, _, v, _ in sink.sent if t == "out"] == [b"V0!!", b"V1!!"] * 2
    task.cancel()


async def test_passes_queued_behind_a_pipelined_tail_run_as_one_batch_and_settle_after_it() -> None:
    head, tail = Upper("a", "mid"), GatedTail()
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = tail_runner(head, tail, sink, ledger, on_fatal=lambda e: None)
    task = await two_passes_behind_a_tail(runner, ledger)
    assert len(head.seen) == 3
    tail.gates[0].set()
    await settle_loop()
    # The two passes queued behind it: their last stage runs once, over both of their records.
    assert [len(batch) for batch in tail.started] == [1, 2]
    sink.ack_all()
    await settle_loop()
    assert ledger.committable() == {("in", 0): 1}  # the batch of the two has not run yet
    tail.gates[1].set()
    await settle_loop()
    assert ledger.committable() == {("in", 0): 1}  # its outputs are not acknowledged yet
    sink.ack_all()
    await settle_loop()
    assert ledger.committable() == {("in", 0): 3}  # both passes settle
    assert [v for t, _, v, _ in sink.sent if t == "out"] == [b"V0!!"] * 3
    task.cancel()


async def test_a_failed_pipelined_tail_stops_the_worker_and_settles_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.runtime.delivery.safety.RETRY_DELAYS_S", ())
    failures: list[BaseException] = []
    head, tail = Upper("a", "mid"), GatedTail()
    sink, ledger = RefusingTails(refuse=True), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = tail_runner(head, tail, sink, ledger, on_fatal=failures.append)
    runner.put(ledger.open({("in", 0): 2}, slices=1), records(2))
    task = await run_one(runner)
    sink.ack_all()
    for _ in range(3):  # the batch, then each record alone: each waits at a gate
        tail.gates[-1].set()
        await settle_loop()
    assert [repr(e) for e in failures] == ["RuntimeError('producer closed')"]
    assert ledger.committable() == {}
    task.cancel()


async def test_a_failed_batch_of_queued_tails_settles_none_of_its_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.runtime.delivery.safety.RETRY_DELAYS_S", ())
    failures: list[BaseException] = []
    head, tail = Upper("a", "mid"), GatedTail()
    sink, ledger = RefusingTails(refuse=False), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = tail_runner(head, tail, sink, ledger, on_fatal=failures.append)
    task = await two_passes_behind_a_tail(runner, ledger)
    tail.gates[0].set()  # the first pass's tail succeeds ...
    await settle_loop()
    sink.ack_all()
    await settle_loop()
    assert ledger.committable() == {("in", 0): 1}
    sink.refuse = True  # ... the batch of the two queued behind it fails
    for _ in range(3):  # the batch, then each record alone: each waits at a gate
        tail.gates[-1].set()
        await settle_loop()
    sink.ack_all()
    await settle_loop()
    assert {repr(e) for e in failures} == {"RuntimeError('producer closed')"}
    assert ledger.committable() == {("in", 0): 1}  # neither of the two settles
    task.cancel()


async def test_a_stop_cancels_a_pipelined_tail_and_settles_nothing_of_its_pass() -> None:
    head, tail = Upper("a", "mid"), GatedTail()
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = tail_runner(head, tail, sink, ledger, on_fatal=lambda e: None)
    runner.put(ledger.open({("in", 0): 2}, slices=1), records(2))
    task = await run_one(runner)
    assert not await runner.finish_running(0.05)  # the tail holds the pass open
    runner.cancel_running()
    sink.ack_all()
    await settle_loop()
    assert ledger.committable() == {}
    task.cancel()


async def test_without_a_pipelined_tail_the_next_pass_waits_for_the_last_stage() -> None:
    head, tail = Upper("a", "mid"), GatedTail()
    sink, ledger = ControlledSink(), OffsetLedger()
    ledger.assign([("in", 0)])
    runner = GroupRunner(
        tail_group(head, tail), sink, ledger, counter=FailureCounter(), on_fatal=lambda e: None
    )
    runner.put(ledger.open({("in", 0): 2}, slices=1), records(2))
    task = await run_one(runner)
    runner.put(ledger.open({("in", 0): 4}, slices=1), records(2, start=2))
    await settle_loop()
    assert len(head.seen) == 1  # the second pass waits for the first one's last stage
    tail.gates[0].set()
    await settle_loop()
    assert len(head.seen) == 2
    task.cancel()


def waiting_group(stage: Upper) -> StageGroup:
    """A group whose passes wait ten seconds for more records (``batch.within_ms``)."""
    waiting = StageSpec(
        name="a",
        function="x:y",
        inputs=("in",),
        outputs=("out",),
        batch={"max": 100, "within_ms": 10_000},
    )
    return StageGroup([StageNode(waiting, stage)], [], PARTITIONS)


@pytest.mark.parametrize("shares_loop", [True, False])
async def test_a_group_alone_in_its_process_does_not_wait_for_more(shares_loop: bool) -> None:
    stage = Upper("a", "out")
    ledger = OffsetLedger()
    ledger.assign([("in", 0)])
    runner = GroupRunner(
        waiting_group(stage),
        ControlledSink(),
        ledger,
        counter=FailureCounter(),
        on_fatal=lambda e: None,
        shares_loop=shares_loop,
    )
    runner.put(ledger.open({("in", 0): 1}, slices=1), records(1))
    task = await run_one(runner)
    # Beside other groups it leaves them the loop for within_ms; alone it has nobody to.
    assert stage.seen == ([] if shares_loop else [[b"v0"]])
    task.cancel()
