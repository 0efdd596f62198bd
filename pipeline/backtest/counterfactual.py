"""Counterfactual replay: the intents that were submitted, rerun under other settings, and
the cost of each compared with what happened.

    event log (a backtest's events.jsonl, or the event store)
      --intent.submitted--> the submissions, at their original times, same client ids
    + the market data of that run (the sim venue driven by it, as in the backtest)
    + the topology with ``--set`` overrides (``risk.max_notional=5000``,
      ``plugins.venues.sim.config.latency_ms=2000``, ``plan.max_splits=1``)
      --Backtest(submissions=..., no strategy)--> validate, prioritise, plan, execute again
      --per intent--> cost against the arrival price, then and now

The strategies do not run again: the question is what the *execution* would have made of the
same intents (a strategy that reacts to its fills would have submitted others; that is a new
backtest, not a counterfactual).  An intent keeps its id when it had a client intent id (ingest
derives the id from the record time, the strategy and the client id); one without gets
``cf-<original id>`` and is matched by it.

Cost is the implementation shortfall against the arrival price: the mid price at the intent's
creation (each asset marked at its deepest pool against the quote asset, as in the
analysis), so a DISPOSE of ``a`` X for Y should have received ``a * mid(X/Y)``, an ACQUIRE of
``b`` Y for X should have cost ``b * mid(Y/X)``; the shortfall is what it fell short (or paid
over), valued in the quote asset and in basis points of the arrival value.  An intent that
did not fill has no cost (its outcome says why).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import yaml

from pipeline.backtest.analysis import price_pools
from pipeline.backtest.data import POOLS_TOPIC, read_market
from pipeline.intent_ids import submission_key
from pipeline.models.market import PoolState
from pipeline.topology.models import Topology

PLAN_MAX_SPLITS = "plan.max_splits"
ENDS = {
    "exec.completed": "completed",
    "exec.failed": "failed",
    "intent.expired": "expired",
    "risk.rejected": "risk_rejected",
    "plan.rejected": "plan_rejected",
    "intent.rejected": "rejected",
}


class SettingError(ValueError):
    """A ``--set`` that does not apply (the key and why)."""


def apply_settings(topology: Topology, settings: Sequence[str]) -> tuple[Topology, int | None]:
    """``topology`` with ``key=value`` overrides (keys are topology.yaml paths, values YAML
    scalars); ``plan.max_splits`` is returned apart (the venues' routing, not the YAML)."""
    data = topology.model_dump(by_alias=True, mode="json")
    max_splits: int | None = None
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SettingError(f"{item!r}: expected key=value")
        value = yaml.safe_load(raw)
        if key == PLAN_MAX_SPLITS:
            if not isinstance(value, int) or value < 1:
                raise SettingError(f"{key}: a whole number >= 1, not {raw!r}")
            max_splits = value
            continue
        *path, last = key.split(".")
        node: Any = data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise SettingError(f"{key}: topology.yaml has no {part!r} there")
            node = node[part]
        if not isinstance(node, dict) or (last not in node and path[:1] != ["plugins"]):
            raise SettingError(f"{key}: topology.yaml has no {last!r} there")
        node[last] = str(value) if isinstance(value, float) else value
    try:
        return Topology.model_validate(data), max_splits
    except ValueError as exc:
        raise SettingError(f"the settings make an invalid topology: {exc}") from exc


def select(
    events: Sequence[dict[str, Any]],
    span: tuple[int, int],
    strategies: Collection[str] = (),
) -> tuple[list[dict[str, Any]], int]:
    """The events of the intents created within ``span`` (the market data's: an intent
    outside it has no market to run on) and of ``strategies`` (all: empty); how many
    intents were left out."""
    chosen: set[str] = set()
    left_out = 0
    for event in events:
        if event["topic"] != "intent.submitted":
            continue
        intent = event["payload"]["intent"]
        inside = span[0] <= intent["createdAtMs"] <= span[1]
        if inside and (not strategies or intent["strategyId"] in strategies):
            chosen.add(event["correlationId"])
        else:
            left_out += 1
    return [e for e in events if e["correlationId"] in chosen], left_out


def submissions_of(events: Iterable[dict[str, Any]]) -> list[tuple[int, bytes, bytes]]:
    """The submissions behind the log's ``intent.submitted`` events, in time order."""
    out: list[tuple[int, bytes, bytes]] = []
    for event in events:
        if event["topic"] != "intent.submitted":
            continue
        intent = dict(event["payload"]["intent"])
        at_ms = intent.pop("createdAtMs")
        original = intent.pop("id")
        if not intent.get("clientIntentId"):  # matched by its original id instead
            intent["clientIntentId"] = f"cf-{original}"
        key = submission_key(intent["strategyId"], intent["clientIntentId"])
        out.append((at_ms, key.encode(), orjson.dumps(intent)))
    out.sort(key=lambda s: s[0])
    return out


@dataclass(frozen=True)
class Outcome:
    state: str
    """completed, failed, expired, risk_rejected, plan_rejected, rejected, or open."""
    amount_in: Decimal | None
    amount_out: Decimal | None
    shortfall: Decimal | None
    """Quote asset; positive: worse than the arrival price."""
    bps: Decimal | None
    reason: str = ""


@dataclass(frozen=True)
class Comparison:
    key: str
    """``strategy id/client intent id``."""
    at_ms: int
    before: Outcome
    after: Outcome


class ArrivalPrices:
    """Each asset's mid price in the quote asset at any moment of the data."""

    def __init__(self, data: Path, topology: Topology, quote: str) -> None:
        decimals = {a.symbol: a.decimals for a in topology.assets}
        self.quote = quote
        firsts: dict[str, PoolState] = {}
        for event in read_market(data):  # read twice rather than held: files can be large
            if event.topic == POOLS_TOPIC and event.key.decode() not in firsts:
                firsts[event.key.decode()] = PoolState.model_validate_json(event.value)
        sources = {p: a for a, p in price_pools(firsts.values(), quote).items()}
        self._series: dict[str, tuple[list[int], list[Decimal]]] = {}
        for event in read_market(data):
            if event.topic != POOLS_TOPIC:
                continue
            state = PoolState.model_validate_json(event.value)
            asset = sources.get(state.pool_id)
            if asset is None:
                continue
            quote_units, asset_units = (
                (state.reserve0, state.reserve1)
                if state.token0 == quote
                else (state.reserve1, state.reserve0)
            )
            price = Decimal(quote_units).scaleb(-decimals[quote]) / Decimal(asset_units).scaleb(
                -decimals[asset]
            )
            times, prices = self._series.setdefault(asset, ([], []))
            times.append(event.at_ms)
            prices.append(price)

    def price(self, asset: str, at_ms: int) -> Decimal | None:
        if asset == self.quote:
            return Decimal(1)
        series = self._series.get(asset)
        if series is None:
            return None
        i = bisect.bisect_right(series[0], at_ms) - 1
        return series[1][max(i, 0)]


def outcomes(
    events: Iterable[dict[str, Any]], prices: ArrivalPrices
) -> dict[str, tuple[int, Outcome]]:
    """Per ``strategy id/client intent id``: (arrival time, outcome)."""
    intents: dict[str, dict[str, Any]] = {}
    ends: dict[str, tuple[str, dict[str, Any]]] = {}
    for event in events:
        topic, intent_id = event["topic"], event["correlationId"]
        if topic == "intent.submitted":
            intents[intent_id] = event["payload"]["intent"]
        elif topic in ENDS and intent_id not in ends:
            ends[intent_id] = (topic, event["payload"])
    out: dict[str, tuple[int, Outcome]] = {}
    for intent_id, intent in intents.items():
        client = intent.get("clientIntentId") or f"cf-{intent_id}"
        key = f"{intent['strategyId']}/{client}"
        at_ms = intent["createdAtMs"]
        topic, payload = ends.get(intent_id, ("", {}))
        state = ENDS.get(topic, "open")
        if state != "completed":
            reason = str(payload.get("reason", ""))
            out[key] = (at_ms, Outcome(state, None, None, None, None, reason))
            continue
        paid, got = Decimal(payload["amountIn"]), Decimal(payload["amountOut"])
        out[key] = (at_ms, _cost(intent, paid, got, at_ms, prices))
    return out


def _cost(
    intent: Mapping[str, Any], paid: Decimal, got: Decimal, at_ms: int, prices: ArrivalPrices
) -> Outcome:
    subject, counter = (
        intent["assets"][0]["asset"]["symbol"],
        intent["assets"][1]["asset"]["symbol"],
    )
    p_subject, p_counter = prices.price(subject, at_ms), prices.price(counter, at_ms)
    if p_subject is None or p_counter is None:
        return Outcome("completed", paid, got, None, None, "no arrival price")
    if intent["type"] == "DISPOSE":  # spent `paid` of subject, received `got` of counter
        arrival = paid * p_subject
        shortfall = arrival - got * p_counter
    else:  # ACQUIRE: received `got` of subject, paid `paid` of counter
        arrival = got * p_subject
        shortfall = paid * p_counter - arrival
    bps = shortfall / arrival * 10_000 if arrival else None
    return Outcome("completed", paid, got, shortfall, bps)


def compare(
    before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]], prices: ArrivalPrices
) -> list[Comparison]:
    then, now = outcomes(before, prices), outcomes(after, prices)
    missing = Outcome("open", None, None, None, None, "not replayed")
    return [
        Comparison(key, at_ms, outcome, now.get(key, (at_ms, missing))[1])
        for key, (at_ms, outcome) in sorted(then.items(), key=lambda kv: (kv[1][0], kv[0]))
    ]


def totals(rows: Sequence[Comparison]) -> dict[str, dict[str, str | int]]:
    """Per side: intents completed, total shortfall, notional-weighted bps."""
    out: dict[str, dict[str, str | int]] = {}
    for side in ("before", "after"):
        done = [getattr(r, side) for r in rows if getattr(r, side).shortfall is not None]
        shortfall = sum((o.shortfall for o in done), Decimal(0))
        out[side] = {
            "completed": sum(1 for r in rows if getattr(r, side).state == "completed"),
            "shortfall": format(shortfall.quantize(Decimal("1e-6")), "f"),
            "mean_bps": format(
                (sum((o.bps for o in done), Decimal(0)) / len(done)).quantize(Decimal("1e-4")), "f"
            )
            if done
            else "n/a",
        }
    return out


def read_log(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
