"""The event envelope and the payload of every event type.

Every fact is one ``Event``; the payload is a domain object.  Stages parse only the payloads
they act on (``parse_payload``) so the hot path stays lean.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Final, TypeVar

from pydantic import Field

from pipeline.ids import deterministic_ulid
from pipeline.models.base import Amount, WireModel
from pipeline.models.control import CONTROL_PAYLOAD_TYPES
from pipeline.models.intent import Intent
from pipeline.models.plan import ExecutionPlan, StepKind

ENVELOPE_VERSION: Final = 1


class FieldError(WireModel):
    """One thing wrong with an input: where (dotted path into the input) and what."""

    path: str
    message: str


# ----------------------------------------------------------------------------- payloads


_INTENT_WIRE: dict[int, tuple[weakref.ref[Intent], dict[str, Any]]] = {}
"""id(intent) -> (a weak reference to it, its wire form), while the intent lives."""
_INTENT_ONLY: Final[set[str]] = {"intent"}


def intent_wire(intent: Intent) -> dict[str, Any]:
    """``intent.to_wire()``, made once per intent object and then shared.

    One intent is in four events (submitted, accepted, prioritised, planned), each made by a
    stage of one fused chain from the same object: dumping it again for each was most of
    their ``to_wire`` (~3 us of ~4).  Shared, so never modify an event's payload (nothing
    does: a payload is a fact).  Models are frozen; ``model_copy`` makes another object.
    Kept while the intent lives (a weak reference: the cache holds no intent alive).
    """
    key = id(intent)
    found = _INTENT_WIRE.get(key)
    if found is not None and found[0]() is intent:
        return found[1]
    wire = intent.to_wire()
    _INTENT_WIRE[key] = (weakref.ref(intent, partial(_forget, key)), wire)
    return wire


def _forget(key: int, ref: weakref.ref[Intent]) -> None:
    found = _INTENT_WIRE.get(key)
    if found is not None and found[0] is ref:
        del _INTENT_WIRE[key]


class _CarriesIntent(WireModel):
    """A payload with an ``intent: Intent`` field: its wire form reuses the intent's
    (``intent_wire``).  The field is declared by each subclass, where its place is (a field
    declared here would come first in every subclass, and so in its JSON)."""

    def to_wire(self) -> dict[str, object]:
        # ``model_dump``'s serializer called directly, as ``WireModel.to_wire`` does.
        rest = self.__pydantic_serializer__.to_python(
            self, mode="json", by_alias=True, exclude_none=True, exclude=_INTENT_ONLY
        )
        intent = intent_wire(self.__dict__["intent"])
        # The keys in field order, as ``model_dump`` would give them (they are the JSON's).
        wire: dict[str, object] = {}
        for alias in _wire_order(type(self)):
            if alias == "intent":
                wire[alias] = intent
            elif alias in rest:
                wire[alias] = rest[alias]
        return wire


_WIRE_ORDER: dict[type[WireModel], tuple[str, ...]] = {}


def _wire_order(model: type[WireModel]) -> tuple[str, ...]:
    found = _WIRE_ORDER.get(model)
    if found is None:
        found = _WIRE_ORDER[model] = tuple(
            field.alias or name for name, field in model.model_fields.items()
        )
    return found


def _intent_and_lane(payload: _CarriesIntent) -> dict[str, object]:
    """The wire form of a payload of just ``intent`` and ``lane: str | None``, written out as
    the serializer writes it (``tests/models/test_intent_wire.py``): ~0.2 us where its pass
    with the intent excluded took ~0.8, for every intent at ingest and at validate.  A lane
    of another type (a payload ``built`` wrong) takes the serializer's path."""
    d = payload.__dict__
    lane = d["lane"]
    if lane is None:
        return {"intent": intent_wire(d["intent"])}
    if type(lane) is str:
        return {"intent": intent_wire(d["intent"]), "lane": lane}
    return _CarriesIntent.to_wire(payload)


class IntentSubmitted(_CarriesIntent):
    intent: Intent
    lane: str | None = None
    """The priority lane ingest queued it in (``topology.yaml`` ``lanes:``); None: no lanes."""

    def to_wire(self) -> dict[str, object]:
        return _intent_and_lane(self)


class IntentRejected(WireModel):
    reason: str
    errors: tuple[FieldError, ...] = ()
    dead_letter_key: str | None = None
    """Key of the record in ``sep.deadletter`` that holds the raw bytes."""
    strategy_id: str | None = None
    client_intent_id: str | None = None


class RiskApproved(WireModel):
    checks: tuple[str, ...]
    notional: Amount
    """Estimated notional of the intent in the quote currency (see the risk configuration)."""


class RiskRejected(WireModel):
    rule: str
    message: str
    limit: str | None = None
    actual: str | None = None


class IntentAccepted(_CarriesIntent):
    intent: Intent
    lane: str | None = None
    """The lane ingest queued it in, carried to prioritise (which reports that lane)."""

    def to_wire(self) -> dict[str, object]:
        return _intent_and_lane(self)


class IntentPrioritised(_CarriesIntent):
    intent: Intent
    priority: Annotated[int, Field(ge=1, le=10)]
    lane: str
    score: Amount
    """The raw score in [0, 1] the priority was bucketed from."""
    scorer: str = "rule"
    """What scored it: ``model`` (the ONNX priority model) or ``rule`` (the weighted sum)."""
    scorer_version: str | None = None
    """The model's version (its file's metadata), or the rule's."""

    def to_wire(self) -> dict[str, object]:
        # The fields beside the intent written out here, as the serializer writes them
        # (``tests/models/test_intent_wire.py``): ~0.6 us where the serializer's pass with
        # the intent excluded, and the reordering, took ~1.9, once per prioritised intent.
        # Values of other types than the fields' (a model ``built`` wrong) take that path.
        d = self.__dict__
        priority, lane, score = d["priority"], d["lane"], d["score"]
        scorer, version = d["scorer"], d["scorer_version"]
        if (
            type(priority) is not int
            or type(lane) is not str
            or type(score) is not Decimal
            or type(scorer) is not str
            or (version is not None and type(version) is not str)
        ):
            return super().to_wire()
        wire: dict[str, object] = {
            "intent": intent_wire(d["intent"]),
            "priority": priority,
            "lane": lane,
            "score": format(score, "f"),
            "scorer": scorer,
        }
        if version is not None:
            wire["scorerVersion"] = version
        return wire


class PlanCreated(_CarriesIntent):
    plan: ExecutionPlan
    intent: Intent
    priority: int = 5


class PlanRejected(WireModel):
    reason: str
    detail: str


class ExecPayload(WireModel):
    """What every ``exec.*`` payload carries."""

    paper: bool | None = None
    """``true``: paper mode (``app.mode: paper``): simulated on a paper twin or the sim
    venue, nothing sent to a chain or an exchange.  Absent in live mode (and in a backtest,
    whose whole log is simulated)."""


class ExecStarted(ExecPayload):
    plan_id: str
    steps: int


class ExecStepSubmitted(ExecPayload):
    plan_id: str
    step_id: str
    venue: str
    order_ref: str
    """The venue's handle on the submitted step: a transaction hash, an order id."""
    kind: StepKind | None = None
    """The step's kind (``swap``, ``order``): a re-planned child is in no ``plan.created``."""
    limit_price: Amount | None = None
    """An order step's limit (``ExecutionStep.limit_price``), in the venue's own units."""
    asked: Amount | None = None
    """What the step fixes: the amount it receives (EXACT_OUT) or spends (EXACT_IN)..."""
    asked_asset: str | None = None
    """...in this asset (a child order's size, in the base asset of its book)."""


class ExecStepFilled(ExecPayload):
    plan_id: str
    step_id: str
    venue: str
    order_ref: str
    asset_in: str
    asset_out: str
    amount_in: Amount
    amount_out: Amount
    landed_at: int | None = None
    """The venue's version the trade landed at (a block; the sim ledger's trade number): a
    pool state with ``version >= landed_at`` includes it (``PoolState.version``)."""
    fee: Amount | None = None
    """The venue's fee on this fill, in ``fee_asset``, already inside ``amount_in`` (a buy on
    a book pays it on top) or ``amount_out`` (a sell receives less).  ``None``: the venue does
    not itemise it (a pool's fee is inside its price; the plan's ``estimatedCost`` has it)."""
    fee_asset: str | None = None


class ExecStepFailed(ExecPayload):
    plan_id: str
    step_id: str
    venue: str
    reason: str


class ExecCompleted(ExecPayload):
    plan_id: str
    asset_in: str
    asset_out: str
    amount_in: Amount
    amount_out: Amount
    realised_slippage: Amount
    """Shortfall of the fill against the plan's estimate, as a fraction (negative: better)."""


class ExecFailed(ExecPayload):
    plan_id: str
    reason: str


class IntentExpired(WireModel):
    deadline_ms: int
    observed_at_ms: int
    stage: str
    reason: str | None = None
    """Why it was expired where it was, when that is not plain lateness (prioritise expires
    an intent whose window cannot hold its planning and execution)."""


class IntentCancelled(WireModel):
    reason: str


PAYLOAD_TYPES: Final[dict[str, type[WireModel]]] = {
    "intent.submitted": IntentSubmitted,
    "intent.rejected": IntentRejected,
    "risk.approved": RiskApproved,
    "risk.rejected": RiskRejected,
    "intent.accepted": IntentAccepted,
    "intent.prioritised": IntentPrioritised,
    "plan.created": PlanCreated,
    "plan.rejected": PlanRejected,
    "exec.started": ExecStarted,
    "exec.step_submitted": ExecStepSubmitted,
    "exec.step_filled": ExecStepFilled,
    "exec.step_failed": ExecStepFailed,
    "exec.completed": ExecCompleted,
    "exec.failed": ExecFailed,
    "intent.expired": IntentExpired,
    "intent.cancelled": IntentCancelled,
    **CONTROL_PAYLOAD_TYPES,
}
EVENT_TYPES: Final = tuple(PAYLOAD_TYPES)


# ----------------------------------------------------------------------------- envelope

P = TypeVar("P", bound=WireModel)


class Event(WireModel):
    event_id: str
    timestamp: datetime
    topic: str
    correlation_id: str
    causation_id: str | None = None
    seq: Annotated[int, Field(ge=1)]
    version: int = ENVELOPE_VERSION
    payload: dict[str, Any]
    # The payload's typed model, when this process made the event (``make_event``) or has
    # parsed it once, is kept in ``__pydantic_private__`` (left None by pydantic: Event
    # declares no private attribute, whose initialisation cost ~6 us per event): fused stages
    # hand events over in memory, and the next stage skips decoding what the previous one
    # built (issue 11: decode once per record).

    def __eq__(self, other: object) -> bool:
        # The cached typed payload is not part of the fact: an event made here equals the
        # same event decoded from the wire (pydantic would compare private attributes too).
        if not isinstance(other, Event):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def parse_payload(self) -> WireModel:
        """The payload as its typed model (raises pydantic's ValidationError if malformed)."""
        return self.payload_as(PAYLOAD_TYPES[self.topic])

    def payload_as(self, model: type[P]) -> P:
        """The payload as ``model``, parsed at most once per event object."""
        cache = self.__pydantic_private__
        typed = cache.get("typed") if cache else None
        if isinstance(typed, model):
            return typed
        parsed = model.model_validate(self.payload)
        object.__setattr__(self, "__pydantic_private__", {**(cache or {}), "typed": parsed})
        return parsed


def make_event(
    topic: str,
    payload: WireModel,
    *,
    correlation_id: str,
    seq: int,
    causation_id: str | None,
    at_ms: int,
    id_ms: int,
) -> Event:
    """Build an event whose id is a deterministic function of (correlation, seq, topic).

    ``at_ms`` is when it happened (the envelope's timestamp); ``id_ms`` is the time part of
    the id and must itself be deterministic (the intent's creation time), so that
    re-processing a redelivered record re-emits the *same* event ids and every store that is
    idempotent on ``event_id`` sees one fact, not two.
    """
    if topic not in PAYLOAD_TYPES:
        raise ValueError(f"unknown event type {topic!r}")
    if not isinstance(payload, PAYLOAD_TYPES[topic]):
        raise ValueError(
            f"{topic}: the payload must be {PAYLOAD_TYPES[topic].__name__}, "
            f"got {type(payload).__name__}"
        )
    if seq < 1:  # the one field a caller can get wrong: let pydantic say so
        Event(
            event_id="",
            timestamp=datetime.now(UTC),
            topic=topic,
            correlation_id="",
            seq=seq,
            payload={},
        )
    # Built, not validated: everything is typed here and the payload is a validated model.
    # (Validating the envelope again cost ~5 us per event, 9 events an intent, and even
    # ``model_construct`` ~3 us: this sets what it would, directly.)
    wire = payload.to_wire()
    event = Event.__new__(Event)
    object.__setattr__(
        event,
        "__dict__",
        {
            "event_id": deterministic_ulid(id_ms, correlation_id, str(seq), topic),
            "timestamp": _timestamp(at_ms),
            "topic": topic,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "seq": seq,
            "version": ENVELOPE_VERSION,
            "payload": wire,
        },
    )
    object.__setattr__(event, "__pydantic_fields_set__", set(_EVENT_FIELDS))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", {"typed": payload, "wire": wire})
    return event


def made_wire(event: Event) -> bool:
    """Whether ``event.payload`` is the wire form ``make_event`` made of a typed payload of
    the intent flow: JSON strings, integers, booleans, lists, objects and finite floats only
    (an intent's ``mlFeatures`` are validated finite), so plain JSON encodes it as pydantic
    would (``pipeline.codec``).  Not for a decoded event (its payload may hold a NaN, which
    pydantic writes as "NaN"), nor a control event (``StrategyConfigured.config`` is any
    JSON)."""
    cache = event.__pydantic_private__
    return (
        cache is not None
        and cache.get("wire") is event.payload
        and event.topic not in CONTROL_PAYLOAD_TYPES
    )


_EVENT_FIELDS: Final = frozenset(Event.model_fields)
_LAST_TIMESTAMP: tuple[int, datetime] = (0, datetime.fromtimestamp(0, tz=UTC))


def _timestamp(at_ms: int) -> datetime:
    """``at_ms`` as a UTC datetime; the last one is kept (a stage stamps a batch's events
    with one clock reading: ~1 us each saved).  Datetimes are immutable: safe to share."""
    global _LAST_TIMESTAMP
    last_ms, stamp = _LAST_TIMESTAMP
    if last_ms != at_ms:
        stamp = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
        _LAST_TIMESTAMP = (at_ms, stamp)
    return stamp
