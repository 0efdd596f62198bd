"""What every stage shares: the records it reads, the outputs it writes, its processor type.

A stage is a pure function from input to events, wrapped in a ``StageProcessor`` that the
runtime calls once per batch (``pipeline.runtime.delivery``).  Processors never touch Kafka:
they get plain ``Record``s and hand back ``Output``s through an ``Emit`` callable, so tests
drive them without a broker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pipeline.codec import decode_event, encode_event, encode_key
from pipeline.config import Settings
from pipeline.control.state import ControlView
from pipeline.market.board import AggregatedBook
from pipeline.models.events import Event
from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue
from pipeline.priority.signals import StrategyOutcomes
from pipeline.store.dedupe import DedupeStore
from pipeline.topology.models import Topology

if TYPE_CHECKING:
    from pipeline.risk.book import RiskBook


@dataclass(frozen=True)
class Record:
    """One consumed Kafka record, reduced to what stage logic may look at."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    event: Event | None = field(default=None, compare=False, repr=False)
    """The decoded event, when the record was handed over in memory by a fused stage (its
    bytes are what went on the topic); ``event_of`` decodes only when it is absent."""

    @classmethod
    def made(
        cls,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes,
        event: Event | None = None,
    ) -> Record:
        """``Record(...)``, its fields set as ``__init__`` sets them, without a frozen
        dataclass's ``object.__setattr__`` per field (~0.6 us of ~0.9 a record: a fused
        chain hands several over per intent, and the memory runtime makes one per output)."""
        record = object.__new__(cls)
        fields = record.__dict__
        fields["topic"] = topic
        fields["partition"] = partition
        fields["offset"] = offset
        fields["timestamp_ms"] = timestamp_ms
        fields["key"] = key
        fields["value"] = value
        fields["event"] = event
        return record


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    event: Event | None = field(default=None, compare=False, repr=False)
    """The event ``value`` encodes (handed to a fused next stage with the record)."""

    @classmethod
    def of_event(cls, topic: str, event: Event) -> Output:
        """The output of ``event`` on ``topic``, keyed by its correlation id (so one intent's
        events stay ordered).  Its fields are set as ``__init__`` sets them, without a frozen
        dataclass's ``object.__setattr__`` per field (~0.45 us of ~0.7 an output; every
        event a stage makes is one)."""
        output = object.__new__(cls)
        fields = output.__dict__
        fields["topic"] = topic
        fields["key"] = encode_key(event.correlation_id)
        fields["value"] = encode_event(event)
        fields["headers"] = ()
        fields["event"] = event
        return output


def event_of(record: Record) -> Event:
    """The record's event: the one handed over in memory, else decoded from its bytes."""
    return record.event if record.event is not None else decode_event(record.value)


Emit = Callable[[Output], Awaitable[None]]
"""Send one output; awaiting it means it is handed to the producer (not yet acknowledged)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class StageTable(Protocol):
    """The part of a faust table a stage uses, so tests can pass a dict-like fake."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, record: Record) -> None: ...

    def delete(self, key: str, partition: int) -> None:
        """Remove ``key``, whose changelog entry is in ``partition`` (a tombstone there)."""
        ...

    def held_keys(self) -> Iterable[str]:
        """Every key this process holds (including those recovered from the changelog)."""
        ...

    def take_recovered(self) -> list[str]:
        """The keys recovered from the changelog since the last call (written by an earlier
        process, or by another worker before its partition moved here)."""
        ...


class MemoryTable(dict[str, str]):
    """A ``StageTable`` in a dict: for tests and tools that run a stage without faust."""

    def set(self, key: str, value: str, record: Record) -> None:
        self[key] = value

    def delete(self, key: str, partition: int) -> None:
        self.pop(key, None)

    def held_keys(self) -> list[str]:
        return list(self)

    def take_recovered(self) -> list[str]:
        return []  # nothing to recover: it starts empty


TableFactory = Callable[[str, str], StageTable]
"""``table(name, help)``: the runtime returns a faust table, tests a ``MemoryTable``."""


def memory_tables(name: str, help: str) -> StageTable:
    return MemoryTable()


@dataclass
class StageContext:
    """Everything a stage may depend on, built once per worker process."""

    topology: Topology
    settings: Settings
    venues: dict[str, Venue] = field(default_factory=dict)
    clock: Callable[[], int] = now_ms
    table: TableFactory = memory_tables
    market: MarketView | None = None
    """Pool states published on ``sep.market.pools`` (``None``: ask the venues directly)."""
    market_venues: frozenset[str] = frozenset()
    """Venues whose pools come from ``market`` once it has any for them."""
    books: BookView | None = None
    """L2 books published on ``sep.market.books`` (``None``: no book venue is enabled)."""
    dedupe: DedupeStore | None = None
    """Where ingest claims dedupe keys (``None``: ingest connects Redis from the settings)."""
    outcomes: StrategyOutcomes = field(default_factory=StrategyOutcomes)
    """Each strategy's recent executions in this worker (execute records them; the priority
    model's fill-rate feature reads them)."""
    control: ControlView | None = None
    """The control plane (kill switch, limits, strategies) read from ``sep.control``
    (``None``: the topology declares no control topic; nothing is ever switched off)."""
    risk: RiskSource | None = None
    """Every strategy's positions and open intents, read from all partitions
    (``pipeline.risk.feed``; ``None``: validate sees only the intents it approved itself)."""


class RiskSource(Protocol):
    """A ``RiskBook`` kept current from every partition (``pipeline.risk.feed``)."""

    book: RiskBook
    background: bool
    """Whether the breakers are evaluated on a timer (a worker), or when a test says so."""

    async def sync(self) -> None:
        """Bring the book up to date (a no-op where followers apply records as they come)."""
        ...

    async def publish(self, event: Event) -> None:
        """Write a control change (``sep.control``), resolved once the broker has it."""
        ...


class MarketView(Protocol):
    """The latest published pool states (``pipeline.market.feed.PoolFeed``)."""

    def pools(self) -> Mapping[str, list[PoolState]]: ...


class BookView(Protocol):
    """One aggregated book per pair across book venues (``pipeline.market.books.BookFeed``)."""

    def book(self, base: str, quote: str) -> AggregatedBook | None: ...


class StageProcessor(Protocol):
    """The agent's body: process one batch, emit outputs, return when they may be acked."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def process(self, records: Sequence[Record], emit: Emit) -> None: ...
