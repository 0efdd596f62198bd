"""Reading the read models: what the API and the UI show, shaped for JSON.

Redis holds flat strings; this module turns them into documents (camelCase, money as decimal
strings) and computes what depends on the moment of reading: plan progress and unrealised P&L
against the latest price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from pipeline.store.positions import valued
from pipeline.store.projection import TERMINAL_STATES

_INTENT_INTERNAL = ("stateSeq",)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class Views:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "",
        *,
        quote_asset: str = "USDC",
        reference_prices: dict[str, Decimal] | None = None,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.quote_asset = quote_asset
        self.reference_prices = reference_prices or {}

    def key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    async def stream_head(self) -> str:
        """The last change's id ('0-0' if none): read it *before* a view, resume after it."""
        last = await self._redis.xrevrange(self.key("changes"), count=1)
        return str(last[0][0]) if last else "0-0"

    async def intent(self, intent_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(self.key(f"intent:{intent_id}"))
        return intent_document(intent_id, raw) if raw else None

    async def intents(
        self, *, state: str | None, strategy: str | None, limit: int, offset: int
    ) -> Page:
        """Newest first.  With both filters, the strategy's index is filtered by state."""
        if strategy is not None:
            index = self.key(f"strategy-intents:{strategy}")
        elif state is not None:
            index = self.key(f"intents:state:{state}")
        else:
            index = self.key("intents")
        if strategy is not None and state is not None:
            ids = [str(i) for i in await self._redis.zrevrange(index, 0, -1)]
            states = await self._hget_many(ids, "state")
            ids = [i for i, s in zip(ids, states, strict=True) if s == state]
            total, ids = len(ids), ids[offset : offset + limit]
        else:
            total = int(await self._redis.zcard(index))
            ids = [str(i) for i in await self._redis.zrevrange(index, offset, offset + limit - 1)]
        pipe = self._redis.pipeline(transaction=False)
        for intent_id in ids:
            pipe.hgetall(self.key(f"intent:{intent_id}"))
        raws = await pipe.execute() if ids else []
        items = [intent_document(i, raw) for i, raw in zip(ids, raws, strict=True) if raw]
        return Page(items, total, limit, offset)

    async def _hget_many(self, ids: list[str], field: str) -> list[str | None]:
        pipe = self._redis.pipeline(transaction=False)
        for intent_id in ids:
            pipe.hget(self.key(f"intent:{intent_id}"), field)
        return list(await pipe.execute()) if ids else []

    async def plan(self, plan_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hgetall(self.key(f"plan:{plan_id}"))
        return plan_document(plan_id, raw) if raw else None

    async def stats(self) -> dict[str, Any]:
        pipe = self._redis.pipeline(transaction=False)
        for name in ("stats:states", "stats:events", "stats:stages"):
            pipe.hgetall(self.key(name))
        states_raw, events_raw, stages_raw = await pipe.execute()
        states = {str(k): int(v) for k, v in states_raw.items() if int(v)}
        total = sum(states.values())
        finished = sum(n for s, n in states.items() if s in TERMINAL_STATES)
        completed = states.get("completed", 0)
        return {
            "intents": total,
            "active": total - finished,
            "executed": completed,
            "finished": finished,
            "successRate": format(Decimal(completed) / finished, ".4f") if finished else None,
            "states": states,
            "events": {str(k): int(v) for k, v in events_raw.items()},
            "stages": {str(k): int(v) for k, v in stages_raw.items()},
        }

    async def strategies(self) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(self.key("strategies"))
        return [{"strategyId": str(s), "intents": int(n)} for s, n in sorted(raw.items())]

    async def prices(self) -> dict[str, Decimal]:
        raw = await self._redis.hgetall(self.key("prices"))
        return {str(k): Decimal(str(v)) for k, v in raw.items()}

    async def positions(self, strategy: str | None = None) -> list[dict[str, Any]]:
        """Each strategy's holdings, valued at the latest fill price (else the reference)."""
        strategies = (
            [strategy]
            if strategy is not None
            else [s["strategyId"] for s in await self.strategies()]
        )
        latest = self.reference_prices | await self.prices()
        pipe = self._redis.pipeline(transaction=False)
        for s in strategies:
            pipe.hgetall(self.key(f"positions:{s}"))
        raws = await pipe.execute() if strategies else []
        out = []
        for s, raw in zip(strategies, raws, strict=True):
            if not raw:
                continue
            assets = [
                valued(orjson.loads(v), str(a), self.quote_asset, latest.get(str(a)))
                for a, v in sorted(raw.items())
            ]
            realised = sum((Decimal(a["realisedPnl"] or "0") for a in assets), Decimal(0))
            unrealised = sum((Decimal(a["unrealisedPnl"] or "0") for a in assets), Decimal(0))
            out.append(
                {
                    "strategyId": s,
                    "quoteAsset": self.quote_asset,
                    "assets": assets,
                    "realisedPnl": _plain(realised),
                    "unrealisedPnl": _plain(unrealised),
                }
            )
        return out


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def intent_document(intent_id: str, raw: dict[Any, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": intent_id}
    timestamps: dict[str, str] = {}
    fills: list[Any] = []
    for key, value in raw.items():
        k, v = str(key), str(value)
        if k.startswith("at:"):
            timestamps[k[3:]] = v
        elif k.startswith("fill:"):
            fills.append(orjson.loads(v))
        elif k == "errors":
            doc["errors"] = orjson.loads(v)
        elif k in ("lastSeq", "eventCount", "priority", "timeWindowMs"):
            doc[k] = int(v)
        elif k not in _INTENT_INTERNAL:
            doc[k] = v
    doc["timestamps"] = dict(sorted(timestamps.items(), key=lambda kv: kv[1]))
    doc["fills"] = sorted(fills, key=lambda f: (f["time"], f["eventId"]))
    return doc


def plan_document(plan_id: str, raw: dict[Any, Any]) -> dict[str, Any]:
    fields = {str(k): str(v) for k, v in raw.items()}
    steps = orjson.loads(fields.get("steps", "[]"))
    known = {s["stepId"] for s in steps}
    # A step event may be projected before plan.created: show the step all the same.
    for k in fields:
        if k.startswith("step:"):
            step_id = k.split(":")[1]
            if step_id not in known:
                known.add(step_id)
                steps.append({"stepId": step_id})
    for step in steps:
        prefix = f"step:{step['stepId']}:"
        step["status"] = fields.get(prefix + "status", "pending")
        for name in ("orderRef", "reason", "fee", "feeAsset"):
            if prefix + name in fields:
                step[name] = fields[prefix + name]
        # The executor's word on a step (exec.step_submitted) fills what plan.created did
        # not say: all of a re-planned child, which no plan.created lists.
        for name in ("venue", "kind", "limitPrice", "asked", "askedAsset", "assetIn", "assetOut"):
            if prefix + name in fields and not step.get(name):
                step[name] = fields[prefix + name]
        if prefix + "amountIn" in fields:
            step["filledIn"] = fields[prefix + "amountIn"]
            step["filledOut"] = fields[prefix + "amountOut"]
        _asked_and_filled(step)
    # Re-planned children (``<plan>-r<j>``) are steps too, beyond plan.created's count.
    count = max(int(fields.get("stepCount", 0)), len(steps))
    filled = sum(1 for s in steps if s["status"] == "filled")
    doc: dict[str, Any] = {k: v for k, v in fields.items() if not k.startswith("step:")}
    doc |= {
        "id": plan_id,
        "steps": steps,
        "stepCount": count,
        "filledSteps": filled,
        "progress": format(Decimal(filled) / count, ".4f") if count else "0",
    }
    doc["fees"] = _fees(steps)
    if "riskScore" in doc:
        doc["riskScore"] = int(doc["riskScore"])
    return doc


def _asked_and_filled(step: dict[str, Any]) -> None:
    """A step's size as a child order shows it: ``asked`` (what the step fixes: received
    when EXACT_OUT, spent when EXACT_IN) in ``askedAsset``, and ``filled`` of it so far."""
    if "asked" not in step and step.get("mode") in ("EXACT_IN", "EXACT_OUT"):
        out = step["mode"] == "EXACT_OUT"
        step["asked"] = step.get("amountOut" if out else "amountIn")
        step["askedAsset"] = step.get("assetOut" if out else "assetIn")
    if "filledIn" in step and step.get("askedAsset"):
        if step["askedAsset"] == step.get("assetOut"):
            step["filled"] = step["filledOut"]
        elif step["askedAsset"] == step.get("assetIn"):
            step["filled"] = step["filledIn"]


def _fees(steps: list[dict[str, Any]]) -> dict[str, str]:
    """The venues' itemised fees over the plan's fills, by asset."""
    total: dict[str, Decimal] = {}
    for step in steps:
        if "fee" in step:
            asset = step.get("feeAsset", "")
            total[asset] = total.get(asset, Decimal(0)) + Decimal(step["fee"])
    return {asset: _plain(amount) for asset, amount in sorted(total.items())}
