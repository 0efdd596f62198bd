"""Ingest: raw submission bytes -> ``intent.submitted`` | ``intent.rejected`` (+ dead letter).

Record shapes:
    in   sep.intents.submitted  key=strategy_id  value=IntentSubmission JSON (untrusted)
    out  sep.intents.ingested   key=intent_id    value=Event(intent.submitted | intent.rejected)
    out  sep.deadletter         key=dl-<ULID>    value=the raw bytes, reason in headers

The intent id is derived from the record, not drawn at random: a redelivered record (after a
crash before the offset commit) gets the same id and re-emits identical events.  A *new*
record with an already-seen (strategy_id, client_intent_id) is a duplicate and is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from pipeline.ids import deterministic_ulid
from pipeline.models.events import FieldError, IntentRejected, IntentSubmitted, make_event
from pipeline.models.intent import Intent, IntentSubmission
from pipeline.stages.base import Emit, Output, Record, StageContext, StageTable
from pipeline.stages.rejections import dead_letter, field_errors, summarise
from pipeline.stages.table_names import INGEST_DEDUPE

log = logging.getLogger(__name__)
OUTPUT_TOPIC = "sep.intents.ingested"
MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class IngestOutcome:
    outputs: tuple[Output, ...]
    dedupe_key: str | None = None
    intent_id: str | None = None
    duplicate_of: str | None = None


def dedupe_key(strategy_id: str, client_intent_id: str) -> str:
    """The pair as a JSON array: one key per pair, whatever characters the ids hold."""
    return orjson.dumps([strategy_id, client_intent_id]).decode()


def _record_intent_id(record: Record, *seed: str) -> str:
    return "intent-" + deterministic_ulid(record.timestamp_ms, *seed)


def _reject(record: Record, reason: str, errors: tuple[FieldError, ...], now: int,
            strategy_id: str | None = None, client_id: str | None = None) -> IngestOutcome:
    origin = (record.topic, str(record.partition), str(record.offset))
    intent_id = _record_intent_id(record, *origin)
    dl_key = "dl-" + deterministic_ulid(record.timestamp_ms, "deadletter", *origin)
    event = make_event(
        "intent.rejected",
        IntentRejected(reason=reason, errors=errors, dead_letter_key=dl_key,
                       strategy_id=strategy_id, client_intent_id=client_id),
        correlation_id=intent_id, seq=1, causation_id=None, at_ms=now,
        id_ms=record.timestamp_ms,
    )
    dl = dead_letter(dl_key, record.value, reason=reason, errors=errors,
                     source=f"{record.topic}/{record.partition}/{record.offset}",
                     correlation_id=intent_id)
    return IngestOutcome((Output.of_event(OUTPUT_TOPIC, event), dl), intent_id=intent_id)


def ingest_record(record: Record, seen: StageTable, now: int) -> IngestOutcome:
    """The pure part of the stage: one raw record in, the outputs it causes out."""
    if len(record.value) > MAX_RECORD_BYTES:
        error = FieldError(path="", message=f"record is {len(record.value)} bytes; "
                           f"the limit is {MAX_RECORD_BYTES}")
        return _reject(record, "record too large", (error,), now)
    try:
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return _reject(record, "not valid JSON", (FieldError(path="", message=str(exc)),), now)
    if not isinstance(data, dict):
        error = FieldError(path="", message=f"expected a JSON object, got {type(data).__name__}")
        return _reject(record, "not a JSON object", (error,), now)
    try:
        submission = IntentSubmission.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        strategy = data.get("strategyId") if isinstance(data.get("strategyId"), str) else None
        client = data.get("clientIntentId") if isinstance(data.get("clientIntentId"), str) else None
        return _reject(record, f"invalid intent: {summarise(errors)}", errors, now,
                       strategy, client)

    key: str | None = None
    if submission.client_intent_id is not None:
        key = dedupe_key(submission.strategy_id, submission.client_intent_id)
        intent_id = _record_intent_id(record, submission.strategy_id, submission.client_intent_id)
        previous = seen.get(key)
        if previous is not None and previous != intent_id:
            return IngestOutcome((), dedupe_key=key, intent_id=intent_id, duplicate_of=previous)
    else:
        intent_id = _record_intent_id(record, record.topic, str(record.partition),
                                      str(record.offset))

    intent = Intent(id=intent_id, created_at_ms=record.timestamp_ms,
                    **submission.model_dump(exclude_none=True))
    event = make_event("intent.submitted", IntentSubmitted(intent=intent),
                       correlation_id=intent_id, seq=1, causation_id=None, at_ms=now,
                       id_ms=record.timestamp_ms)
    return IngestOutcome((Output.of_event(OUTPUT_TOPIC, event),), dedupe_key=key,
                         intent_id=intent_id)


class IngestStage:
    name = "ingest"

    def __init__(self, context: StageContext, seen: StageTable) -> None:
        self._context = context
        self._seen = seen
        self.duplicates = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        now = self._context.clock()
        for record in records:
            outcome = ingest_record(record, self._seen, now)
            if outcome.duplicate_of is not None:
                self.duplicates += 1
                log.info("duplicate intent dropped", extra={
                    "dedupe_key": outcome.dedupe_key, "original": outcome.duplicate_of})
                continue
            if outcome.dedupe_key is not None and outcome.intent_id is not None:
                self._seen.set(outcome.dedupe_key, outcome.intent_id, record)
            for output in outcome.outputs:
                await emit(output)


def build(context: StageContext) -> IngestStage:
    seen = context.table(INGEST_DEDUPE,
                         "(strategy_id, client_intent_id) -> intent id, for deduplication")
    return IngestStage(context, seen)
