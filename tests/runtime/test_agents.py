"""The agents' micro-batching (``batches``), driven by a stand-in for a faust stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from pipeline.runtime import agents
from pipeline.runtime.agents import batches
from pipeline.stages.base import Emit, Output, Record


@dataclass
class _Message:
    offset: int


@dataclass
class _Event:
    message: _Message


@dataclass
class _Consumer:
    delivered: list[int] = field(default_factory=list)

    def note_delivered(self, message: _Message) -> None:
        self.delivered.append(message.offset)


@dataclass
class _App:
    consumer: _Consumer = field(default_factory=_Consumer)


class _Stream:
    """Yields offsets from ``arrivals`` (offset, delay before it arrives) like a faust stream."""

    def __init__(self, arrivals: list[tuple[int, float]]) -> None:
        self.app = _App()
        self.enable_acks = True
        self.current_event: _Event | None = None
        self._arrivals = arrivals

    async def __aiter__(self) -> AsyncIterator[int]:
        for offset, delay in self._arrivals:
            if delay:
                await asyncio.sleep(delay)
            self.current_event = _Event(_Message(offset))
            yield offset


async def _take(stream: _Stream, count: int, max_: int, within_s: float) -> list[list[int]]:
    out: list[list[int]] = []
    seen = 0
    async for batch in batches(stream, max_, within_s):
        out.append([e.message.offset for e in batch])
        seen += len(batch)
        if seen >= count:
            break
    return out


async def test_batches_never_exceed_max_and_keep_order() -> None:
    stream = _Stream([(i, 0.0) for i in range(25)])
    got = await _take(stream, 25, 10, 0.05)
    assert [o for b in got for o in b] == list(range(25))
    assert all(len(b) <= 10 for b in got)
    assert stream.enable_acks is False  # the caller acks, after processing
    assert stream.app.consumer.delivered == list(range(25))  # each one noted as delivered


async def test_within_zero_takes_what_is_queued_without_waiting() -> None:
    # Record 1 arrives 50 ms after record 0: with no wait, record 0 goes alone.
    stream = _Stream([(0, 0.0), (1, 0.05)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    first: list[int] = []
    async for batch in batches(stream, 10, 0.0):
        first = [e.message.offset for e in batch]
        break
    assert first == [0]
    assert loop.time() - started < 0.04


async def test_a_window_waits_for_more_records() -> None:
    stream = _Stream([(0, 0.0), (1, 0.02), (2, 0.02)])
    got = await _take(stream, 3, 10, 0.2)
    assert got == [[0, 1, 2]]




class _PoisonError(Exception):
    """Stands for an error the data causes (asyncpg.DataError in the project stage)."""


class _Processor:
    """Fails any batch holding the poison record; infrastructure errors never happen."""

    name = "fake"

    def __init__(self) -> None:
        self.processed: list[int] = []

    @staticmethod
    def retry_forever(exc: BaseException) -> bool:
        return not isinstance(exc, _PoisonError)

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        if any(r.value == b"poison" for r in records):
            raise _PoisonError("refused")
        self.processed += [r.offset for r in records]


async def test_a_poison_record_is_dead_lettered_and_the_rest_processed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    records = [Record("t", 0, i, 0, b"k", b"poison" if i == 1 else b"ok") for i in range(3)]
    processor = _Processor()
    emitted: list[Output] = []

    async def emit(out: Output) -> None:
        emitted.append(out)

    await agents.process_safely(processor, records, emit)
    assert processor.processed == [0, 2]
    assert [o.topic for o in emitted] == ["sep.deadletter"]
    assert emitted[0].value == b"poison"
