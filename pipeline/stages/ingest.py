"""Ingest: raw submission bytes -> ``intent.submitted`` | ``intent.rejected`` (+ dead letter).

Record shapes:
    in   sep.intents.submitted  key=[strategy_id, client_intent_id] (``submission_key``; any
                                key works)  value=IntentSubmission JSON (untrusted)
    out  sep.intents.ingested   key=intent_id    value=Event(intent.submitted | intent.rejected)
    out  sep.deadletter         key=dl-<ULID>    value=the raw bytes (a bounded prefix),
                                                 reason in headers (``rejections.py``)

A record with no value (a tombstone) reaches us as empty bytes: the runtime maps Kafka's
``None`` value to ``b""``, so "no value" here means ``not record.value``.

The intent id is derived from the record, not drawn at random: a redelivered record (after a
crash before the offset commit) gets the same id and re-emits identical events.  It is
aligned to the record's partition (``pipeline.intent_ids``): every record ingest writes goes
to the partition number it read, so ingest is fused with the chain after it.  A *new*
record with an already-claimed (strategy_id, client_intent_id) is a duplicate and is dropped.
The claim is made in a store every worker shares (``pipeline.store.dedupe``), not in a
partition-local table: a duplicate may arrive on any partition, depending on which
partitioner its producer used.

Per batch:
    records --parse_record--> outcomes: rejected (outputs ready) | accepted (key, id, outputs)
            --dedupe.claim([(key, id), ...]), one round trip--> owner per accepted key
            --owner == id: emit the outputs | owner != id: drop, logged as a duplicate

With ``lanes:`` in ``topology.yaml`` the stage writes to a topic per priority lane
(``sep.intents.ingested.<lane>``): the batch's accepted intents are scored in one call by
prioritise's scorer (``pipeline.priority.scoring``) and each ``intent.submitted`` goes to
its lane's topic, saying the lane (prioritise reports the same one); a rejection goes to
the first declared output (the highest lane: cheap to skip, never paused).

    accepted outcomes --scorer.score(intents), one call--> lanes
                      --intent.submitted{lane} on sep.intents.ingested.<lane>

With ``lanes.submit`` the stage also reads the input lane topics
(``sep.intents.submitted.<lane>``, chosen by the producers) beside the plain one, and the
runtime takes its passes by lane (``lanes.scheduled``).  Nothing here depends on which
topic a record came from but a record-derived id (no client id: topic/partition/offset):
the dedupe claim is global (``pipeline.store.dedupe``), so copies of one submission in two
lanes are one intent, owned by whichever ingest takes first, and every intent is scored
again for the lane it waits in next.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError
from redis.exceptions import RedisError

from pipeline.config import DEFAULT_CLOCK_SKEW_TOLERANCE_MS
from pipeline.ids import deterministic_ulid
from pipeline.intent_ids import aligned_intent_id
from pipeline.limits import MAX_INPUT_RECORD_BYTES, MAX_REASON_CHARS
from pipeline.models.base import built
from pipeline.models.events import FieldError, IntentRejected, IntentSubmitted, make_event
from pipeline.models.intent import Intent, IntentSubmission
from pipeline.priority.scoring import IntentScorer
from pipeline.stages.base import Emit, Output, Record, StageContext
from pipeline.stages.rejections import clip, dead_letter, field_errors, summarise
from pipeline.store.dedupe import DedupeStore, RedisDedupeStore, dedupe_key

log = logging.getLogger(__name__)
TIMESTAMP_PATH = "<record>.timestamp"
"""The field path of a rejection about the Kafka record's own timestamp (not the JSON)."""


@dataclass(frozen=True)
class IngestOutcome:
    outputs: tuple[Output, ...]
    dedupe_key: str | None = None
    """Set for an accepted submission with a client intent id: what it must claim."""
    intent_id: str | None = None
    duplicate_of: str | None = None
    """The intent that owns ``dedupe_key`` when it is not this one (then ``outputs`` is ())."""
    rejected: str | None = None
    """The reason, when the record was rejected (``outputs``: the rejection, the dead letter)."""


def _origin_seed(record: Record) -> tuple[str, str, str]:
    """The seed of a record-derived id (no client id, or a rejection): where it was read."""
    return (record.topic, str(record.partition), str(record.offset))


def _origin(record: Record) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return "out of range"


def _skew_error(record: Record, now: int, tolerance_ms: int) -> FieldError | None:
    skew = record.timestamp_ms - now
    if abs(skew) <= tolerance_ms:
        return None
    side = "ahead of" if skew > 0 else "behind"
    return FieldError(
        path=TIMESTAMP_PATH,
        message=(
            f"record time {record.timestamp_ms} ({_iso(record.timestamp_ms)}) is {abs(skew)} ms "
            f"{side} the receive time {now} ({_iso(now)}); the tolerance is {tolerance_ms} ms "
            "(SEP_CLOCK_SKEW_TOLERANCE_MS): check the producer's clock or the timestamp it sets"
        ),
    )


def _reject(
    topic: str,
    record: Record,
    reason: str,
    errors: tuple[FieldError, ...],
    now: int,
    id_ms: int,
    partitions: int,
    strategy_id: str | None = None,
    client_id: str | None = None,
    omitted: int = 0,
) -> IngestOutcome:
    origin = _origin_seed(record)
    intent_id = aligned_intent_id(id_ms, origin, record.partition, partitions)
    dl_key = "dl-" + deterministic_ulid(id_ms, "deadletter", *origin)
    reason = clip(reason, MAX_REASON_CHARS)
    event = make_event(
        "intent.rejected",
        IntentRejected(
            reason=reason,
            errors=errors,
            dead_letter_key=dl_key,
            strategy_id=strategy_id,
            client_intent_id=client_id,
        ),
        correlation_id=intent_id,
        seq=1,
        causation_id=None,
        at_ms=now,
        id_ms=id_ms,
    )
    dl = dead_letter(
        dl_key,
        record.value,
        reason=reason,
        errors=errors,
        source=_origin(record),
        correlation_id=intent_id,
        errors_omitted=omitted,
    )
    return IngestOutcome((Output.of_event(topic, event), dl), intent_id=intent_id, rejected=reason)


def _clip_id(text: str | None) -> str | None:
    # Who sent an invalid record, kept on its rejection: the schema bounds valid ids, an
    # invalid record's are whatever it holds.
    return None if text is None else clip(text, 200)


def parse_record(
    record: Record,
    now: int,
    *,
    topic: str,
    partitions: int = 1,
    clock_skew_tolerance_ms: int = DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> IngestOutcome:
    """One raw record in, the outputs it causes if its dedupe key (if any) is its own.

    ``partitions``: of ``topic``; every id is aligned to the record's partition number
    among them (``pipeline.intent_ids``; 1: one partition, nothing to align)."""
    # Rejecting a record whose timestamp is skewed, rather than replacing the timestamp with
    # the receive time: the intent id and the time window derive from the record's timestamp,
    # so a replaced one would give a redelivered record another id (executed twice), and the
    # id a producer predicted from its own timestamp (POST /intents, our client) would never
    # exist.  The producer's clock is what is wrong; the rejection says so.
    skew = _skew_error(record, now, clock_skew_tolerance_ms)
    # A rejection's ids take their time from the record too, so a redelivery re-emits the same
    # events; except for a skewed record, whose ids would sort in 2036 (or 1970) on every list
    # of intents: those take the receive time, and a redelivered one is rejected once more.
    id_ms = record.timestamp_ms if skew is None else now

    if not record.value:
        error = FieldError(
            path="",
            message="the record's value is null or empty (a tombstone?); "
            "expected an intent submission as a JSON object",
        )
        return _reject(topic, record, "record has no value", (error,), now, id_ms, partitions)
    if len(record.value) > MAX_INPUT_RECORD_BYTES:
        error = FieldError(
            path="",
            message=f"record is {len(record.value)} bytes; the limit is {MAX_INPUT_RECORD_BYTES}",
        )
        return _reject(topic, record, "record too large", (error,), now, id_ms, partitions)
    if skew is not None:
        return _reject(
            topic,
            record,
            "record timestamp too far from the receiving clock",
            (skew,),
            now,
            id_ms,
            partitions,
        )
    try:
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return _reject(
            topic,
            record,
            "not valid JSON",
            (FieldError(path="", message=str(exc)),),
            now,
            id_ms,
            partitions,
        )
    if not isinstance(data, dict):
        error = FieldError(path="", message=f"expected a JSON object, got {type(data).__name__}")
        return _reject(topic, record, "not a JSON object", (error,), now, id_ms, partitions)
    try:
        submission = IntentSubmission.model_validate(data)
    except ValidationError as exc:
        errors, omitted = field_errors(exc)
        strategy = data.get("strategyId") if isinstance(data.get("strategyId"), str) else None
        client = data.get("clientIntentId") if isinstance(data.get("clientIntentId"), str) else None
        return _reject(
            topic,
            record,
            summarise(errors, omitted, prefix="invalid intent: "),
            errors,
            now,
            id_ms,
            partitions,
            _clip_id(strategy),
            _clip_id(client),
            omitted,
        )

    key: str | None = None
    if submission.client_intent_id is not None:
        key = dedupe_key(submission.strategy_id, submission.client_intent_id)
        # The id every producer can predict (POST /intents claims it before producing).
        seed: tuple[str, ...] = (submission.strategy_id, submission.client_intent_id)
    else:
        seed = _origin_seed(record)
    intent_id = aligned_intent_id(record.timestamp_ms, seed, record.partition, partitions)
    # The submission's parts are validated models already: handed over as they are, not
    # dumped and validated again (that was half of ingest's time); the two fields added are
    # ours (an "intent-" id, the record's time), so the intent is constructed, not
    # validated (its identifiers' checks again were ~10 % of ingest); and ``built``, not
    # ``model_construct`` (pydantic's generic path was ~9 % of ingest), which sets the same.
    parts = {k: v for k, v in submission.__dict__.items() if v is not None}
    intent = built(Intent, id=intent_id, created_at_ms=record.timestamp_ms, **parts)
    event = make_event(
        "intent.submitted",
        built(IntentSubmitted, intent=intent),
        correlation_id=intent_id,
        seq=1,
        causation_id=None,
        at_ms=now,
        id_ms=record.timestamp_ms,
    )
    return IngestOutcome((Output.of_event(topic, event),), dedupe_key=key, intent_id=intent_id)


def decide(outcome: IngestOutcome, owner: str | None) -> IngestOutcome:
    """``outcome`` as it stands once the store said who owns its dedupe key."""
    if outcome.dedupe_key is None or owner is None or owner == outcome.intent_id:
        return outcome
    return replace(outcome, outputs=(), duplicate_of=owner)


def ingest_record(
    record: Record,
    owners: Mapping[str, str],
    now: int,
    *,
    topic: str,
    partitions: int = 1,
    clock_skew_tolerance_ms: int = DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> IngestOutcome:
    """The pure part of the stage: one raw record and the dedupe keys' known owners (key ->
    intent id, as the store answered) in, the outputs it causes out."""
    outcome = parse_record(
        record,
        now,
        topic=topic,
        partitions=partitions,
        clock_skew_tolerance_ms=clock_skew_tolerance_ms,
    )
    key = outcome.dedupe_key
    return decide(outcome, owners.get(key) if key is not None else None)


def _record_key(record: Record) -> str | None:
    return None if record.key is None else clip(record.key.decode(errors="replace"), 200)


class IngestStage:
    name = "ingest"

    @staticmethod
    def retry_forever(exc: BaseException) -> bool:
        """Redis away (or refusing writes): retry until it is back.  No record causes a Redis
        error here, and dead-lettering would drop valid intents."""
        return isinstance(exc, RedisError)

    def __init__(self, context: StageContext) -> None:
        self._context = context
        topology = context.topology
        self._topic = topology.stage(self.name).events_topic
        self._partitions = topology.topic(self._topic).partitions
        self._lanes = topology.lanes
        self._scorer = IntentScorer(topology, context.outcomes) if self._lanes else None
        self._dedupe: DedupeStore | None = context.dedupe
        self._own_store: RedisDedupeStore | None = None
        self.duplicates = 0

    async def start(self) -> None:
        if self._dedupe is None:
            settings = self._context.settings
            self._own_store = RedisDedupeStore.connect(
                settings.redis, settings.redis_prefix, settings.dedupe_ttl_s
            )
            self._dedupe = self._own_store

    async def stop(self) -> None:
        if self._own_store is not None:
            await self._own_store.close()
            self._own_store = self._dedupe = None

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        if self._dedupe is None:
            raise RuntimeError("the ingest stage is not started (no dedupe store)")
        now = self._context.clock()
        tolerance = self._context.settings.clock_skew_tolerance_ms
        outcomes = [
            parse_record(
                r,
                now,
                topic=self._topic,
                partitions=self._partitions,
                clock_skew_tolerance_ms=tolerance,
            )
            for r in records
        ]
        claims = [
            (o.dedupe_key, o.intent_id)
            for o in outcomes
            if o.dedupe_key is not None and o.intent_id is not None
        ]
        owners = iter(await self._dedupe.claim(claims) if claims else ())
        if self._scorer is not None:
            outcomes = self._in_lanes(outcomes, now)
        for record, parsed in zip(records, outcomes, strict=True):
            outcome = decide(parsed, next(owners) if parsed.dedupe_key is not None else None)
            if outcome.duplicate_of is not None:
                self.duplicates += 1
                log.info(
                    "duplicate intent dropped",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "key": _record_key(record),
                        "dedupe_key": outcome.dedupe_key,
                        "intent_id": outcome.intent_id,
                        "original_intent_id": outcome.duplicate_of,
                    },
                )
                continue
            if outcome.rejected is not None:
                log.info(
                    "record rejected",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "key": _record_key(record),
                        "reason": outcome.rejected,
                        "intent_id": outcome.intent_id,
                    },
                )
            for output in outcome.outputs:
                await emit(output)

    def _in_lanes(self, outcomes: list[IngestOutcome], now: int) -> list[IngestOutcome]:
        """Each accepted intent's ``intent.submitted`` moved to its lane's topic."""
        assert self._scorer is not None
        assert self._lanes is not None
        at = [
            i
            for i, o in enumerate(outcomes)
            if o.rejected is None and o.outputs and o.outputs[0].event is not None
        ]
        events = [outcomes[i].outputs[0].event for i in at]
        intents = [e.payload_as(IntentSubmitted).intent for e in events if e is not None]
        if self._context.market is not None:
            self._scorer.volatility.observe(self._context.market.pools())
        lanes = self._scored_lanes(intents, now)
        out = list(outcomes)
        for i, intent, lane in zip(at, intents, lanes, strict=True):
            event = outcomes[i].outputs[0].event
            assert event is not None
            laned = make_event(
                "intent.submitted",
                IntentSubmitted(intent=intent, lane=lane),
                correlation_id=event.correlation_id,
                seq=1,
                causation_id=None,
                at_ms=now,
                id_ms=intent.created_at_ms or now,
            )
            output = Output.of_event(self._lanes.topic_of(lane), laned)
            out[i] = replace(outcomes[i], outputs=(output, *outcomes[i].outputs[1:]))
        return out

    def _scored_lanes(self, intents: list[Intent], now: int) -> list[str]:
        """Each intent's lane: the batch scored in one call; if an intent the scorer cannot
        score spoils the batch, one by one, and such an intent goes to the lowest lane (it
        has not been validated yet: validate rejects it there, with the reason)."""
        assert self._scorer is not None
        assert self._lanes is not None
        try:
            return [p.lane for p in self._scorer.score(intents, now)]
        except (ValueError, ArithmeticError):
            lowest = self._lanes.lanes[-1].name
            lanes = []
            for intent in intents:
                try:
                    lanes.append(self._scorer.score([intent], now)[0].lane)
                except (ValueError, ArithmeticError):
                    log.info("intent not scored; lowest lane", extra={"intent_id": intent.id})
                    lanes.append(lowest)
            return lanes


def build(context: StageContext) -> IngestStage:
    return IngestStage(context)
