"""What one event does to the read models: a pure function, event -> ``Projection``.

The Redis script (``readmodel.py``) only stores what this module decides, so every rule about
*which* fields an event sets lives here, in Python, testable without Redis.

Every field is written under a guard (the event's seq, zero-padded so strings compare like
numbers): a field already written by a later event of the same intent is left alone.  That is
what makes the projection order-insensitive; the seq bitmap makes it idempotent.  ``merge``
folds one intent's projections of a batch into the winner per field, so the script receives
each field once, already merged (issue 11: merging in Lua was most of Redis' CPU here).

    Event(exec.step_filled, seq 8)
      -> Projection(intent={"fill:s1": "{...}", "updatedAt": ...},
                    plan_id="plan-…", plan={"step:s1:status": "filled", ...},
                    prices={"WETH": "3012.5"}, state="executing", stage="execute")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from operator import attrgetter
from typing import Final

import orjson

from pipeline.ids import is_ulid, ulid_timestamp_ms
from pipeline.models.base import wire_amount
from pipeline.store.facts import EventFacts, Facts

STATE_OF: Final[dict[str, str | None]] = {
    "intent.submitted": "submitted",
    "intent.rejected": "rejected",
    "risk.approved": None,
    "risk.rejected": "risk_rejected",
    "intent.accepted": "accepted",
    "intent.prioritised": "prioritised",
    "plan.created": "planned",
    "plan.rejected": "plan_rejected",
    "exec.started": "executing",
    "exec.step_submitted": "executing",
    "exec.step_filled": "executing",
    "exec.step_failed": "executing",
    "exec.completed": "completed",
    "exec.failed": "failed",
    "intent.expired": "expired",
    "intent.cancelled": "cancelled",
}
TERMINAL_STATES: Final = frozenset(
    {"rejected", "risk_rejected", "plan_rejected", "completed", "failed", "expired", "cancelled"}
)
STAGE_OF: Final[dict[str, str]] = {
    "intent.submitted": "ingest",
    "intent.rejected": "ingest",
    "risk.approved": "validate",
    "risk.rejected": "validate",
    "intent.accepted": "validate",
    "intent.prioritised": "prioritise",
    "plan.created": "plan",
    "plan.rejected": "plan",
    "exec.started": "execute",
    "exec.step_submitted": "execute",
    "exec.step_filled": "execute",
    "exec.step_failed": "execute",
    "exec.completed": "execute",
    "exec.failed": "execute",
    "intent.expired": "execute",
    "intent.cancelled": "execute",
}
# Events whose payload carries the whole intent: any of them tells the strategy.
_CARRIES_INTENT: Final = (
    "intent.submitted",
    "intent.accepted",
    "intent.prioritised",
    "plan.created",
)


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (~1 us a
# projection, one per event); nothing changes a projection once ``project`` made it.
@dataclass(slots=True)
class Projection:
    intent_id: str
    seq: int
    topic: str
    state: str
    """The lifecycle state the event moves to, '' if it does not move it."""
    stage: str
    ms: int
    event_id: str
    intent: dict[str, str]
    plan_id: str = ""
    plan: dict[str, str] = field(default_factory=dict)
    prices: dict[str, str] = field(default_factory=dict)
    """Latest price of an asset in the quote asset, implied by a fill against it."""

    @property
    def price_guard(self) -> str:
        # Prices are shared by all intents: the later fill (time, then id) wins.
        return f"{self.ms:013d}:{self.event_id}"


def guard_of(seq: int) -> str:
    """A field's guard: the seq of the event that wrote it, zero-padded so that strings compare
    like numbers (Lua compares the stored guard with the offered one as strings)."""
    return f"{seq:010d}"


@dataclass
class Merged:
    """One intent's projections of a batch, merged: what the apply script writes for it.

    Every field keeps the value of the highest guard among the events given, which is what
    applying them one by one would leave, whatever their order and however often each comes.
    That holds whether or not an event was applied before (its guard then ties or loses to
    the stored one, and a tie writes nothing), so the merge needs no knowledge of Redis: only
    the counters, the state moves and the change stream depend on which seqs are new, and the
    script learns that from the seq bitmap, per event.

    ``events`` holds each seq once (the first projection of it), by seq.
    """

    intent_id: str
    events: list[Projection]
    strategy: str
    """The strategy, if any event here tells it ('' otherwise)."""
    intent: dict[str, str]
    intent_guards: dict[str, str]
    plans: dict[str, tuple[dict[str, str], dict[str, str]]]
    """plan id -> (fields, their guards)."""
    prices: dict[str, tuple[str, str]]
    """asset -> (price, guard): the shared prices, guarded by fill time then event id."""


_BY_SEQ: Final = attrgetter("seq")


def merge(projections: Iterable[Projection]) -> Merged:
    """Merge one intent's projections (any order, duplicates allowed; see ``Merged``)."""
    events: list[Projection] = []
    last = None
    # Sorted (stably) by seq, a seq's projections are adjacent: the first of each is kept.
    for p in sorted(projections, key=_BY_SEQ):
        if p.seq != last:
            events.append(p)
            last = p.seq
    if not events:
        raise ValueError("merge needs at least one projection")
    intent: dict[str, str] = {}
    guards: dict[str, str] = {}
    plans: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    prices: dict[str, tuple[str, str]] = {}
    # In seq order, a later update is a higher guard: dict.update keeps the right value.
    # (``guards`` gets its keys in the same order as ``intent``, and a plan's guards as its
    # fields: ``readmodel._intent_args`` relies on it.)
    for p in events:
        guard = guard_of(p.seq)
        intent.update(p.intent)
        guards.update(dict.fromkeys(p.intent, guard))
        if p.plan_id:
            plan = plans.get(p.plan_id)
            if plan is None:
                plan = plans[p.plan_id] = ({}, {})
            plan[0].update(p.plan)
            plan[1].update(dict.fromkeys(p.plan, guard))
        if p.prices:
            price_guard = p.price_guard
            for asset, price in p.prices.items():
                held = prices.get(asset)
                if held is None or price_guard > held[1]:
                    prices[asset] = (price, price_guard)
    return Merged(
        intent_id=events[0].intent_id,
        events=events,
        strategy=intent.get("strategyId", ""),
        intent=intent,
        intent_guards=guards,
        plans=plans,
        prices=prices,
    )


@lru_cache(maxsize=4096)
def created_ms(intent_id: str) -> int:
    """When the intent was created: the time part of its id (the same for every event).

    Cached: an intent is applied in ~2-4 batches and its terminal event is measured too,
    and decoding the id is ~1-2 us (a cache hit ~0.1)."""
    ulid = intent_id.removeprefix("intent-")
    return ulid_timestamp_ms(ulid) if is_ulid(ulid) else 0


def _price(amount_quote: str, amount_asset: str) -> str | None:
    try:
        quote, asset = Decimal(amount_quote), Decimal(amount_asset)
    except InvalidOperation:
        return None
    if asset <= 0:
        return None
    return format(wire_amount(quote / asset), "f")


def _intent_fields(event: EventFacts, at: str) -> dict[str, str]:
    p, topic = event.payload, event.topic
    out: dict[str, str] = {f"at:{topic}": at, "updatedAt": at}
    if topic in _CARRIES_INTENT:
        intent = p["intent"]
        out["strategyId"] = intent["strategyId"]
    if topic == "intent.submitted":
        intent = p["intent"]
        subject, counter = intent["assets"][0], intent["assets"][1]
        constraints = intent["constraints"]
        out |= {
            "type": intent["type"],
            "asset": subject["asset"]["symbol"],
            "amount": str(subject.get("amount", "")),
            "counterAsset": counter["asset"]["symbol"],
            "maxSlippage": str(constraints["maxSlippage"]),
            "timeWindowMs": str(constraints["timeWindowMs"]),
            "executionStyle": constraints.get("executionStyle", "ADAPTIVE"),
        }
        if "clientIntentId" in intent:
            out["clientIntentId"] = intent["clientIntentId"]
    elif topic == "intent.rejected":
        out["reason"] = p["reason"]
        if p.get("errors"):
            out["errors"] = orjson.dumps(p["errors"]).decode()
        if p.get("strategyId"):
            out["strategyId"] = p["strategyId"]
    elif topic == "risk.rejected":
        out |= {"reason": f"{p['rule']}: {p['message']}", "riskRule": p["rule"]}
    elif topic == "intent.prioritised":
        out |= {"priority": str(p["priority"]), "lane": p["lane"]}
    elif topic == "plan.created":
        out |= {"planId": p["plan"]["id"], "estimatedOut": p["plan"]["estimatedOut"]}
    elif topic == "plan.rejected":
        out["reason"] = f"{p['reason']}: {p['detail']}"
    elif topic == "exec.started":
        out["planId"] = p["planId"]
    elif topic == "exec.step_submitted":
        out["orderRef"] = p["orderRef"]
    elif topic == "exec.step_filled":
        out["orderRef"] = p["orderRef"]
        out[f"fill:{p['stepId']}"] = orjson.dumps(
            {
                "stepId": p["stepId"],
                "intentId": event.correlation_id,
                "eventId": event.event_id,
                "time": at,
                "venue": p["venue"],
                "assetIn": p["assetIn"],
                "assetOut": p["assetOut"],
                "amountIn": p["amountIn"],
                "amountOut": p["amountOut"],
            }
            # The venue's own fee, when it itemises it (a book's taker fee).
            | ({"fee": p["fee"], "feeAsset": p.get("feeAsset", "")} if "fee" in p else {}),
            option=orjson.OPT_SORT_KEYS,
        ).decode()
    elif topic == "exec.completed":
        out |= {
            "assetIn": p["assetIn"],
            "assetOut": p["assetOut"],
            "amountIn": p["amountIn"],
            "amountOut": p["amountOut"],
            "realisedSlippage": p["realisedSlippage"],
        }
    elif topic in ("exec.failed", "exec.step_failed"):
        out["reason"] = p["reason"]
    elif topic == "intent.expired":
        out["reason"] = f"window closed at {p['deadlineMs']} (seen at {p['observedAtMs']})"
    elif topic == "intent.cancelled":
        out["reason"] = p["reason"]
    return out


_ASKED: Final = ("venue", "kind", "limitPrice", "asked", "askedAsset")


def _plan_fields(event: EventFacts, at: str) -> tuple[str, dict[str, str]]:
    p, topic = event.payload, event.topic
    if topic == "plan.created":
        plan = p["plan"]
        steps = [
            {
                k: step.get(k)
                for k in (
                    "stepId",
                    "kind",
                    "venue",
                    "mode",
                    "assetIn",
                    "assetOut",
                    "amountIn",
                    "amountOut",
                    "minOut",
                    "maxIn",
                    "limitPrice",
                )
            }
            | {"hops": len(step["legs"])}
            for step in plan["steps"]
        ]
        return plan["id"], {
            "id": plan["id"],
            "intentId": plan["intentId"],
            "status": "planned",
            "steps": orjson.dumps(steps).decode(),
            "stepCount": str(len(steps)),
            "estimatedOut": plan["estimatedOut"],
            "estimatedCost": plan["estimatedCost"],
            "priceImpact": plan["priceImpact"],
            "riskScore": str(plan["riskScore"]),
            "createdAt": at,
        }
    if "planId" not in p:
        return "", {}
    step = f"step:{p['stepId']}:" if "stepId" in p else ""
    fields: dict[str, str] = {
        "intentId": event.correlation_id,
        "id": p["planId"],
        "updatedAt": at,
    }
    if topic == "exec.started":
        fields["status"] = "executing"
    elif topic == "exec.step_submitted":
        fields |= {f"{step}status": "submitted", f"{step}orderRef": p["orderRef"]}
        # What the child order asked for, said by the executor: a re-planned child
        # (``<plan>-r<j>``) is in no plan.created.
        for name in _ASKED:  # a loop, not a comprehension: ~1 us less a step submitted
            if name in p:
                fields[step + name] = str(p[name])
    elif topic == "exec.step_filled":
        fields |= {
            f"{step}status": "filled",
            f"{step}venue": p["venue"],
            f"{step}orderRef": p["orderRef"],
            f"{step}assetIn": p["assetIn"],
            f"{step}assetOut": p["assetOut"],
            f"{step}amountIn": p["amountIn"],
            f"{step}amountOut": p["amountOut"],
        }
        if "fee" in p:
            fields |= {f"{step}fee": p["fee"], f"{step}feeAsset": p.get("feeAsset", "")}
    elif topic == "exec.step_failed":
        fields |= {
            f"{step}status": "failed",
            f"{step}venue": p["venue"],
            f"{step}reason": p["reason"],
        }
    elif topic == "exec.completed":
        fields["status"] = "completed"
    elif topic == "exec.failed":
        fields |= {"status": "failed", "reason": p["reason"]}
    return p["planId"], fields


def _prices(event: EventFacts, quote_asset: str) -> dict[str, str]:
    if event.topic != "exec.step_filled":
        return {}
    p = event.payload
    if p["assetOut"] == quote_asset and p["assetIn"] != quote_asset:
        price = _price(p["amountOut"], p["amountIn"])
        return {p["assetIn"]: price} if price else {}
    if p["assetIn"] == quote_asset and p["assetOut"] != quote_asset:
        price = _price(p["amountIn"], p["amountOut"])
        return {p["assetOut"]: price} if price else {}
    return {}


def project(event: EventFacts, quote_asset: str = "USDC") -> Projection:
    # Once per event of every batch (issue 11, session 13): each attribute read once, the
    # projection built positionally, prices only for the one type that has them.
    topic, timestamp = event.topic, event.timestamp
    # The event's time in every field that holds it: decode_facts made the text already.
    at = (event.at if type(event) is Facts else "") or timestamp.isoformat()
    plan_id, plan = _plan_fields(event, at)
    return Projection(
        event.correlation_id,
        event.seq,
        topic,
        STATE_OF.get(topic) or "",
        STAGE_OF.get(topic, "other"),
        int(timestamp.timestamp() * 1000),
        event.event_id,
        _intent_fields(event, at),
        plan_id,
        plan,
        _prices(event, quote_asset) if topic == "exec.step_filled" else {},
    )
