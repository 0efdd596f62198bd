"""The ``RiskBook`` of every worker that validates, fed by every partition of the topics that
tell what strategies hold and have open -- broadcast, like the market feeds.

Validate runs on 8 partitions keyed by intent id, spread over workers, but exposure is per
strategy: each worker must see every strategy's fills and open intents, not only those of its
own partitions.  So each follows, with no consumer group and every partition assigned:

    topic                   from                                   for
    sep.intents.validated   the oldest intent that may still be    open intents
                            open (max window + grace ago)
    sep.plans               the beginning                          the strategy of old fills;
                                                                   plan.rejected ends an intent
    sep.executions          the beginning                          fills (positions are lifetime)

A worker reads all of them before its validate stage takes its first intent (the lifecycle
starts feeds first), so a restarted worker knows every position.  Deliberate simplification:
positions are rebuilt from the topics' retention (7 days in topology.yaml); a desk keeping
positions longer would seed the book from the event store.

What this worker approved but has not read back yet is counted by the engine as pending
(``pipeline.risk.engine``), so its own quick intents cannot slip past a limit together.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.codec import encode_event, encode_key
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.market.follower import TopicFollower
from pipeline.models.events import PAYLOAD_TYPES, Event
from pipeline.risk import wire
from pipeline.risk.book import ENDINGS, INTERESTING, RiskBook
from pipeline.risk.engine import AFTER_DEADLINE_MS
from pipeline.runtime.delivery.patches import Gathering
from pipeline.stages.base import Record
from pipeline.topology.models import Topology

log = logging.getLogger(__name__)

VALIDATED, PLANS, EXECUTIONS = "sep.intents.validated", "sep.plans", "sep.executions"
CATCH_UP_TIMEOUT_S = 300.0
"""Reading days of executions at start can take a while; a worker waits rather than fail."""

GATHER_WAIT_MS = 25
"""Default of ``Settings.risk_feed_wait_ms`` (``SEP_RISK_FEED_WAIT_MS``)."""
GATHER_BYTES = 64 * 1024
"""A fetch returns after ``wait_ms`` or once this many bytes per ``GATHER_WAIT_MS`` of it have
gathered (64 KiB at 25 ms), so a longer wait means fewer fetches at any rate (``sep bench
followers``: a fetch costs ~1 ms of CPU, an intent's 7 records ~20 µs; following 500
intents/s, 147 µs an intent at 25 ms, 98 at 50)."""


def gathering(wait_ms: int = GATHER_WAIT_MS) -> Gathering:
    """The risk feed's fetch gathering for a wait of ``wait_ms``."""
    return Gathering(min_bytes=GATHER_BYTES * wait_ms // GATHER_WAIT_MS, wait_ms=wait_ms)


_TOPIC_FIELD = re.compile(rb'"topic":"([A-Za-z0-9_.]+)"')
_CORRELATION_FIELD = re.compile(rb'"correlationId":"([^"\\]+)"')
_TOPIC_KEY = b'"topic":"'
_CORRELATION_KEY = b'"correlationId":"'
_KNOWN_TYPES = {kind.encode(): kind for kind in PAYLOAD_TYPES}


def event_type(value: bytes) -> str | None:
    """The envelope's event type, without decoding the event (most records are skipped)."""
    start = value.find(_TOPIC_KEY)
    if start >= 0:
        # The common case, without the regex: the first ``"topic":"`` holds a known type (so
        # the regex, whose every match starts there, would match there too).
        start += len(_TOPIC_KEY)
        kind = _KNOWN_TYPES.get(value[start : value.find(b'"', start)])
        if kind is not None:
            return kind
    found = _TOPIC_FIELD.search(value)
    return found.group(1).decode() if found else None


def correlation_id(value: bytes) -> str | None:
    """The envelope's correlation id, without decoding the event."""
    start = value.find(_CORRELATION_KEY)
    if start >= 0:
        # The common case, without the regex: the first ``"correlationId":"`` is the
        # envelope's (it comes before the payload), and an id without a quote or an escape
        # ends at the next quote (where the regex, matching there first, would end too).
        start += len(_CORRELATION_KEY)
        end = value.find(b'"', start)
        if end > start and b"\\" not in value[start:end]:
            return value[start:end].decode()
    match = _CORRELATION_FIELD.search(value)
    return match.group(1).decode() if match else None


def apply_record(book: RiskBook, value: bytes) -> bool:
    """Apply one record to ``book`` if it is an event the book reads.

    Every validating worker reads every intent's events here, so only what the book needs
    is read: an ending needs only the intent's id, a ``plan.created`` only the strategy of an
    intent whose acceptance the book has not seen, and the rest only a few fields of the JSON
    (``pipeline.risk.wire``; the event models' validation cost more than the whole book)."""
    kind = event_type(value)
    if kind not in INTERESTING:
        return False
    if kind == "intent.accepted":
        # One of this process' own approvals: the book has its open intent already
        # (``RiskBook.expect``: the same intent, read from the model instead of the JSON).
        intent_id = correlation_id(value)
        opened = book.take_expected(intent_id) if intent_id is not None else None
        if opened is not None:
            book.accept(opened)
            return True
    if kind in ENDINGS or kind == "plan.created":
        intent_id = correlation_id(value)
        if intent_id is not None and kind in ENDINGS:
            book.end(intent_id)
            return True
        if intent_id is not None and book.knows_strategy(intent_id):
            return True
    try:
        event = orjson.loads(value)
        payload = event["payload"]
        if kind == "intent.accepted":
            book.accept(wire.open_intent(payload))
        elif kind == "plan.created":
            book.know(*wire.strategy_of_plan(payload))
        elif kind == "exec.step_filled":
            book.fill(event["correlationId"], wire.fill(payload, event["timestamp"]))
        else:
            book.end(event["correlationId"])
    except (orjson.JSONDecodeError, LookupError, TypeError, ValueError, ArithmeticError) as exc:
        log.warning("unreadable event skipped by the risk feed", extra={"error": str(exc)[:300]})
        return False
    return True


Send = Callable[[str, bytes, bytes], Awaitable[object]]
"""``send(topic, key, value)``, resolved once the broker has the record."""


class _BookFollower(TopicFollower):
    """One consumer for the three topics, gathering records into larger fetches while they
    flow: a worker's own approvals count as pending until read back (``pipeline.risk.engine``),
    so lagging by the gathering's ``wait_ms`` costs other workers' approvals that much more time to
    be counted, and saves most of the fetch requests (three consumers per worker fetching on
    every new record were the broker's busiest clients)."""

    TASK_NAME = "risk-feed"

    def __init__(
        self,
        bootstrap: str,
        partitions: Mapping[str, int],
        book: RiskBook,
        since_ms: Mapping[str, int],
        gather: Gathering | None = None,
    ) -> None:
        super().__init__(bootstrap, dict(partitions), gathering=gather or gathering())
        self._book = book
        self._since_ms = since_ms

    async def start_offsets(
        self, consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        starts = dict(await consumer.beginning_offsets(tps))
        timed = [tp for tp in tps if tp.topic in self._since_ms]
        if not timed:
            return starts
        ends = await consumer.end_offsets(timed)
        found = await consumer.offsets_for_times({tp: self._since_ms[tp.topic] for tp in timed})
        for tp in timed:
            starts[tp] = found[tp].offset if found.get(tp) else ends[tp]
        return starts

    def apply(self, value: bytes) -> bool:
        applied = apply_record(self._book, value)
        self.updates += applied
        return applied


class RiskFeed:
    """The book, and the followers that fill it; ``publish`` writes a control change."""

    background = True
    """Its engine evaluates the breakers on a timer (the memory feed is driven by tests)."""

    def __init__(
        self, bootstrap: str, topology: Topology, send: Send, *, wait_ms: int = GATHER_WAIT_MS
    ) -> None:
        """``wait_ms``: how long the broker may gather records while they flow
        (``Settings.risk_feed_wait_ms``)."""
        risk = topology.risk
        self.book = RiskBook(risk.quote_asset, risk.reference_prices)
        partitions = {t.name: t.partitions for t in topology.topics}
        window = risk.max_time_window_ms + AFTER_DEADLINE_MS
        since = time.time_ns() // 1_000_000 - window
        read = {t: partitions[t] for t in (VALIDATED, PLANS, EXECUTIONS) if t in partitions}
        self._followers = [
            _BookFollower(bootstrap, read, self.book, {VALIDATED: since}, gathering(wait_ms))
        ]
        self._send = send

    async def start(self) -> None:
        for follower in self._followers:
            await follower.start(CATCH_UP_TIMEOUT_S)
        log.info("risk book caught up", extra={"events": self.book.applied})

    async def stop(self) -> None:
        for follower in self._followers:
            await follower.stop()

    async def sync(self) -> None:
        """Nothing to do: the followers apply records as they arrive."""

    async def publish(self, event: Event) -> None:
        await self._send(CONTROL_TOPIC, encode_key(event.correlation_id), encode_event(event))


class MemoryRiskFeed:
    """The same book over the in-memory runtime's topics (``build_memory_runtime``): ``sync``
    applies what was appended since the last call; ``publish`` feeds ``sep.control``."""

    background = False

    def __init__(self, topology: Topology) -> None:
        risk = topology.risk
        self.book = RiskBook(risk.quote_asset, risk.reference_prices)
        self._logs: Mapping[str, Sequence[Record]] = {}
        self._feed: Callable[[str, bytes, bytes], None] | None = None
        self._cursor: dict[str, int] = {}

    def attach(
        self, logs: Mapping[str, Sequence[Record]], feed: Callable[[str, bytes, bytes], None]
    ) -> None:
        """``logs``: the runtime's topics (``MemoryTopics.log``); ``feed(topic, key, value)``
        appends a record from outside (``MemoryRuntime.feed``)."""
        self._logs = logs
        self._feed = feed

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def sync(self) -> None:
        for topic in (VALIDATED, PLANS, EXECUTIONS):
            log_ = self._logs.get(topic, [])
            for record in log_[self._cursor.get(topic, 0) :]:
                apply_record(self.book, record.value)
            self._cursor[topic] = len(log_)

    async def publish(self, event: Event) -> None:
        if self._feed is None:
            raise RuntimeError("the memory risk feed is not attached to a runtime")
        self._feed(CONTROL_TOPIC, encode_key(event.correlation_id), encode_event(event))
