"""Validate: deep validation and the risk engine's checks.

Record shapes:
    in   sep.intents.ingested   Event(intent.submitted)   (intent.rejected is ignored)
    out  sep.intents.validated  Event(risk.approved) + Event(intent.accepted)
                              | Event(risk.rejected)      a risk limit says no (or rule
                                                          "killed": a kill switch covers it)
                              | Event(intent.rejected)    the intent itself is wrong
    out  sep.deadletter         the intent JSON, when it is wrong (not for risk refusals)

Wrong input (unknown asset, assets on two chains, amount <= 0, ``allowedVenues: []``...) is a
rejection with a field path a person can fix; a risk refusal names the rule and the numbers.

Risk (``pipeline.risk``, docs/risk.md): the intent's assets at market marks (refused when a
mark is stale), its notional and slippage, then its strategy's exposure -- positions, open
intents and today's notional as every worker sees them, plus this stage's own approvals not
read back yet -- and the breaker state (REDUCING lets only exposure-reducing intents pass).

State: ``sep-validate-decisions`` (intent id -> the outputs given): the funding check reads
balances that move, so a redelivered intent is answered from memory (``decisions.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple

from pipeline.models.assets import Asset
from pipeline.models.base import built, wire_amount
from pipeline.models.events import (
    Event,
    FieldError,
    IntentAccepted,
    IntentRejected,
    IntentSubmitted,
    RiskApproved,
    RiskRejected,
    make_event,
)
from pipeline.models.inputs import shown
from pipeline.models.intent import Intent, IntentType
from pipeline.plugins.manager import build_risk_checks
from pipeline.plugins.risk import RiskBreach, RiskCheck, run_checks
from pipeline.plugins.venue import HasBalances
from pipeline.pricing import notional
from pipeline.risk.engine import CHECKS, RiskEngine
from pipeline.risk.prices import Unpriced
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.decisions import Decisions
from pipeline.stages.killed import refuse_killed
from pipeline.stages.rejections import dead_letter, summarise
from pipeline.stages.table_names import VALIDATE_DECISIONS
from pipeline.topology.models import Topology

RISK_CHECKS = ("max_notional", "max_slippage")
ENGINE_CHECKS = ("price", *CHECKS)
"""With the risk engine: marks usable (``stale_price`` / ``unpriced``), then its rules."""
_WITH_ENGINE = (*RISK_CHECKS, *ENGINE_CHECKS)
_ZERO = Decimal(0)


def semantic_errors(intent: Intent, topology: Topology, venues: Sequence[str]) -> list[FieldError]:
    """Everything wrong with the intent as a request, each with its path on the wire.

    What the model checks on its own (number formats, ``maxSlippage`` below 1, a window of at
    most a year) was refused at ingest; this is what needs the topology and the venues.
    Values from the intent are shown as JSON writes them (``"FOO"``), never as Python reprs.
    """
    errors: list[FieldError] = []
    registry = _registry(topology)
    for i, spec in enumerate(intent.assets):
        asset = spec.asset
        found = registry.get(asset.symbol)
        if found is None:
            errors.append(
                FieldError(
                    path=f"assets.{i}.asset.symbol",
                    message=f"unknown asset {shown(asset.symbol)}; "
                    f"known: {', '.join(sorted(registry))}",
                )
            )
            continue
        known, key = found
        if (
            asset.address == known.address
            and asset.chain_id == known.chain_id
            and asset.decimals == known.decimals
        ):
            continue  # as registered, letter for letter: the common case, no key made
        if key != asset.key or known.decimals != asset.decimals:
            # By key: addresses are case-insensitive (mixed case is only a checksum).
            errors.append(
                FieldError(
                    path=f"assets.{i}.asset",
                    message=(
                        f"{spec.asset.symbol} is registered as {known.address} with "
                        f"{known.decimals} decimals on chain {known.chain_id}; "
                        f"the intent says {spec.asset.address}, "
                        f"{spec.asset.decimals} decimals, chain {spec.asset.chain_id}"
                    ),
                )
            )
    subject, counter = intent.assets
    if subject.asset.chain_id != counter.asset.chain_id:
        errors.append(
            FieldError(
                path="assets.1.asset.chainId",
                message=(
                    f"both assets must be on one chain: {subject.asset.chain_id} and "
                    f"{counter.asset.chain_id}"
                ),
            )
        )
    if subject.asset.symbol == counter.asset.symbol:
        errors.append(
            FieldError(path="assets.1.asset.symbol", message="the two assets must differ")
        )
    if subject.percentage is not None:
        errors.append(
            FieldError(
                path="assets.0.percentage",
                message="percentage amounts are not supported yet; give amount",
            )
        )
    elif subject.amount is None:
        errors.append(FieldError(path="assets.0.amount", message="an amount is required"))
    elif subject.amount <= 0:
        errors.append(
            FieldError(
                path="assets.0.amount",
                message=f"must be greater than 0, got {shown(subject.amount)}",
            )
        )
    elif subject.amount.adjusted() < -subject.asset.decimals:
        # Nothing can be traded: the router refuses zero base units.  ``to_base_units`` is 0
        # exactly when 0 < amount < 10**-decimals, i.e. when the amount's leading digit is
        # further right than the asset's last decimal (``adjusted()``: that digit's power
        # of ten); this asks that without scaling the amount (~1.5 us an intent).
        smallest = subject.asset.from_base_units(1)
        errors.append(
            FieldError(
                path="assets.0.amount",
                message=(
                    f"{shown(subject.amount)} is less than one base unit of {subject.asset.symbol} "
                    f"({subject.asset.decimals} decimals); the smallest amount is {smallest:f}"
                ),
            )
        )
    if counter.amount is not None or counter.percentage is not None:
        errors.append(
            FieldError(
                path="assets.1",
                message=(
                    "the counter asset takes no amount: the market sets it, bounded by maxSlippage"
                ),
            )
        )
    c = intent.constraints
    limits = topology.risk
    if not limits.min_time_window_ms <= c.time_window_ms <= limits.max_time_window_ms:
        errors.append(
            FieldError(
                path="constraints.timeWindowMs",
                message=(
                    f"must be between {limits.min_time_window_ms} and "
                    f"{limits.max_time_window_ms} ms, "
                    f"got {c.time_window_ms}"
                ),
            )
        )
    errors.extend(_venue_errors(c.allowed_venues, venues))
    if c.limit_price is not None:
        # Accepting it would promise a protection nobody gives: the planner has no limit
        # price (its bound is maxSlippage), so the intent would trade at any price.
        errors.append(
            FieldError(
                path="constraints.limitPrice",
                message=(
                    "limit prices are not supported yet: omit limitPrice and bound the price with "
                    "maxSlippage"
                ),
            )
        )
    return errors


class _Known(NamedTuple):
    """What validate looks up in a topology for every intent, made once per topology."""

    topology: Topology
    """Kept, so its id is not reused while the entry lives."""
    registry: dict[str, tuple[Asset, str]]
    """The topology's assets by symbol, each with its key."""
    topic: str
    """The stage's events topic (``Topology.stage`` searches the stages' list)."""


_KNOWN: dict[int, _Known] = {}


def _known(topology: Topology) -> _Known:
    found = _KNOWN.get(id(topology))
    if found is None or found.topology is not topology:
        if len(_KNOWN) > 64:
            _KNOWN.clear()
        found = _KNOWN[id(topology)] = _Known(
            topology,
            {a.symbol: (a, a.key) for a in topology.assets},
            topology.stage("validate").events_topic,
        )
    return found


def _registry(topology: Topology) -> dict[str, tuple[Asset, str]]:
    """The topology's assets by symbol, each with its key: made once per topology, not once
    per intent."""
    return _known(topology).registry


def _venue_errors(allowed: Sequence[str] | None, venues: Sequence[str]) -> list[FieldError]:
    """``allowedVenues``: omitted means every venue, so an empty list can only be a mistake
    (the planner would find no venue and blame the amount)."""
    if allowed is None or (allowed and all(venue in venues for venue in allowed)):
        return []  # the common case, without writing out the venues
    known = ", ".join(sorted(venues)) or "(none is enabled)"
    if not allowed:
        return [
            FieldError(
                path="constraints.allowedVenues",
                message=(
                    "lists no venue: omit it to allow every venue, or name at least one of: "
                    f"{known}"
                ),
            )
        ]
    return [
        FieldError(
            path=f"constraints.allowedVenues.{j}",
            message=f"unknown venue {shown(venue)}; known: {known}",
        )
        for j, venue in enumerate(allowed)
        if venue not in venues
    ]


def risk_breaches(
    intent: Intent, topology: Topology, value: Decimal | None = None
) -> list[RiskBreach]:
    """The per-intent limits: its notional (``value``, at the marks; omitted, at the
    reference prices) and its slippage."""
    limits = topology.risk
    breaches: list[RiskBreach] = []
    if value is None:
        value = notional(intent, topology)
    if value is None:
        # Size cannot be checked, so the intent is refused rather than waved through.
        breaches.append(
            RiskBreach(
                "max_notional",
                f"no reference price for {intent.subject.asset.symbol}: "
                "its notional cannot be checked",
                f"{limits.max_notional:f}",
                "unknown",
            )
        )
    elif value > limits.max_notional:
        breaches.append(
            RiskBreach(
                "max_notional",
                f"notional {value:f} {limits.quote_asset} exceeds the limit "
                f"{limits.max_notional:f} {limits.quote_asset}",
                f"{limits.max_notional:f}",
                f"{value:f}",
            )
        )
    if intent.constraints.max_slippage > limits.max_slippage:
        breaches.append(
            RiskBreach(
                "max_slippage",
                f"max slippage {intent.constraints.max_slippage:f} exceeds the limit "
                f"{limits.max_slippage:f}",
                f"{limits.max_slippage:f}",
                f"{intent.constraints.max_slippage:f}",
            )
        )
    return breaches


Holdings = Mapping[str, Decimal]
"""What a venue's trading account holds, by asset symbol (human units)."""


def spend_estimate(intent: Intent, topology: Topology) -> tuple[str, Decimal] | None:
    """(asset, amount) the intent spends at most: DISPOSE sells its amount; ACQUIRE pays
    about the reference-price value plus the slippage it allows.  None if unpriced."""
    subject, counter = intent.subject, intent.counter
    amount = subject.amount or Decimal(0)
    if intent.type is IntentType.DISPOSE:
        return subject.asset.symbol, amount
    prices = topology.risk.reference_prices
    bought, paid = prices.get(subject.asset.symbol), prices.get(counter.asset.symbol)
    if bought is None or paid is None or paid <= 0:
        return None
    return counter.asset.symbol, amount * bought / paid * (1 + intent.constraints.max_slippage)


_spent: tuple[Intent, Topology, tuple[str, Decimal] | None] | None = None
"""The last ``spend_estimate`` made by ``_spend``: its intent, topology and answer."""


def _spend(intent: Intent, topology: Topology) -> tuple[str, Decimal] | None:
    """``spend_estimate``, once per intent: the funding check and, if the intent is accepted,
    ``_reserve`` right after it ask the same (~2.5 us each)."""
    global _spent
    known = _spent
    if known is not None and known[0] is intent and known[1] is topology:
        return known[2]
    spend = spend_estimate(intent, topology)
    _spent = (intent, topology, spend)
    return spend


def funding_breach(
    intent: Intent, topology: Topology, holdings: Mapping[str, Holdings | None]
) -> RiskBreach | None:
    """A breach when no venue the intent may use can fund it (``None`` holdings: unlimited).

    ``holdings`` covers the venues the intent may use.  Deliberately coarse: the amount an
    ACQUIRE pays is estimated at the reference prices, and holdings are what the account
    had when the batch was validated (the stage deducts what it accepts within a batch).
    """
    spend = _spend(intent, topology)
    if spend is None or not holdings or any(h is None for h in holdings.values()):
        return None
    symbol, needed = spend
    held = {venue: (h or {}).get(symbol, Decimal(0)) for venue, h in holdings.items()}
    if any(amount >= needed for amount in held.values()):
        return None
    best = max(held.values())
    where = ", ".join(f"{venue} holds {amount:f}" for venue, amount in sorted(held.items()))
    return RiskBreach(
        "funding",
        f"needs about {wire_amount(needed):f} {symbol}; {where}",
        f"{best:f}",
        f"{wire_amount(needed):f}",
    )


def market_breaches(
    intent: Intent, topology: Topology, engine: RiskEngine, now: int
) -> list[RiskBreach]:
    """The risk limits at market marks: both assets priced (``stale_price`` / ``unpriced``
    otherwise: nothing about the intent's size can be judged), its notional and slippage,
    then its strategy's exposure and breaker state (``pipeline.risk``)."""
    return _market_breaches(intent, topology, engine, now)[0]


def _market_breaches(
    intent: Intent, topology: Topology, engine: RiskEngine, now: int
) -> tuple[list[RiskBreach], Decimal | None]:
    """``market_breaches`` and the notional at the subject's mark (None: unpriced), which
    ``risk.approved`` reports: one mark asked for both, and one product."""
    subject, counter = intent.assets
    marked = engine.mark(subject.asset.symbol)
    marked_counter = engine.mark(counter.asset.symbol)
    if isinstance(marked, Unpriced) or isinstance(marked_counter, Unpriced):
        return [
            RiskBreach(found.rule, found.reason, found.limit, found.actual)
            for found in (marked, marked_counter)
            if isinstance(found, Unpriced)
        ], None
    value = (subject.amount or Decimal(0)) * marked.price
    breaches = risk_breaches(intent, topology, value)
    return breaches + engine.judge(intent, now, (marked, marked_counter)), value


def validate_event(
    event: Event,
    topology: Topology,
    venues: Sequence[str],
    now: int,
    holdings: Mapping[str, Holdings | None] | None = None,
    extra_checks: Sequence[RiskCheck] = (),
    engine: RiskEngine | None = None,
) -> list[Output]:
    """The pure part of the stage: one ``intent.submitted`` in, its outputs out.

    ``holdings``: per venue, what its account holds (``None``: unlimited); omitted, the
    funding check is not made.  ``extra_checks``: the plugins' risk checks the topology
    enables (``plugins.risk_checks``), run after the built-in limits.  ``engine``: the
    strategies' exposure and breaker state with market marks (``pipeline.risk``); omitted,
    only the per-intent limits at the reference prices.
    """
    submitted = event.payload_as(IntentSubmitted)
    intent = submitted.intent
    id_ms = intent.created_at_ms or now
    topic = _known(topology).topic
    intent_id, seq, cause = intent.id, event.seq, event.event_id

    errors = semantic_errors(intent, topology, venues)
    if errors:
        dl_key = f"dl-{cause}"
        rejected = make_event(
            "intent.rejected",
            IntentRejected(
                reason=f"invalid intent: {summarise(errors)}",
                errors=tuple(errors),
                dead_letter_key=dl_key,
                strategy_id=intent.strategy_id,
                client_intent_id=intent.client_intent_id,
            ),
            correlation_id=intent_id,
            seq=seq + 1,
            causation_id=cause,
            at_ms=now,
            id_ms=id_ms,
        )
        raw = intent.model_dump_json(by_alias=True, exclude_none=True).encode()
        return [
            Output.of_event(topic, rejected),
            dead_letter(
                dl_key,
                raw,
                reason=rejected.payload["reason"],
                errors=errors,
                source=f"validate/{cause}",
                correlation_id=intent_id,
            ),
        ]
    value: Decimal | None
    if engine is None:
        breaches = risk_breaches(intent, topology)
        checks: tuple[str, ...] = RISK_CHECKS
        value = notional(intent, topology)
    else:
        breaches, value = _market_breaches(intent, topology, engine, now)
        checks = _WITH_ENGINE
    if extra_checks:
        breaches += run_checks(extra_checks, intent, now)
        checks = (*checks, *(check.name for check in extra_checks))
    if holdings is not None:
        allowed = intent.constraints.allowed_venues
        usable = {v: h for v, h in holdings.items() if allowed is None or v in allowed}
        checks = (*checks, "funding")
        if (breach := funding_breach(intent, topology, usable)) is not None:
            breaches.append(breach)
    if breaches:
        first = breaches[0]
        rejected = make_event(
            "risk.rejected",
            RiskRejected(
                rule=first.rule,
                message="; ".join(b.message for b in breaches),
                limit=first.limit,
                actual=first.actual,
            ),
            correlation_id=intent_id,
            seq=seq + 1,
            causation_id=cause,
            at_ms=now,
            id_ms=id_ms,
        )
        return [Output.of_event(topic, rejected)]
    # Built, not validated (``built``): the checks' names, and a notional within the limit
    # that approved it (finite, at most 36 places once ``wire_amount`` has rounded it); the
    # intent a validated one, the lane the validated submission's.
    approved = make_event(
        "risk.approved",
        built(RiskApproved, checks=checks, notional=wire_amount(value or _ZERO)),
        correlation_id=intent_id,
        seq=seq + 1,
        causation_id=cause,
        at_ms=now,
        id_ms=id_ms,
    )
    accepted = make_event(
        "intent.accepted",
        built(IntentAccepted, intent=intent, lane=submitted.lane),
        correlation_id=intent_id,
        seq=seq + 2,
        causation_id=cause,
        at_ms=now,
        id_ms=id_ms,
    )
    return [Output.of_event(topic, approved), Output.of_event(topic, accepted)]


class ValidateStage:
    name = "validate"

    def __init__(
        self, context: StageContext, risk_checks: Sequence[RiskCheck] | None = None
    ) -> None:
        self._context = context
        self._topic = context.topology.stage(self.name).events_topic
        self._inputs = frozenset(context.topology.stage(self.name).inputs)
        # None: the checks the topology enables, built by the plugin manager.
        self._checks = tuple(
            build_risk_checks(context.topology) if risk_checks is None else risk_checks
        )
        self._decisions = Decisions(
            context.table(
                VALIDATE_DECISIONS,
                "intent id -> the validation events given, re-emitted on redelivery",
            ),
            ttl_s=context.settings.decision_ttl_s,
        )
        self._venues = tuple(
            name for name, use in context.topology.plugins.venues.items() if use.enabled
        )
        self.risk = RiskEngine(context)

    async def start(self) -> None:
        await self.risk.start()

    async def stop(self) -> None:
        await self.risk.stop()

    async def _holdings(self, intents: Sequence[Intent]) -> dict[str, dict[str, Decimal] | None]:
        """Account holdings of the venues whose balances can decide one of ``intents``.

        ``None`` for a venue without an account (unlimited).  An intent that may use such a
        venue needs no balance, so a batch of those reads nothing: reading a chain account
        costs a few RPC calls, which at one small batch per intent was most of the stage's
        time.
        """
        venues = self._context.venues
        accounts = {name: v for name, v in venues.items() if isinstance(v, HasBalances)}
        unlimited = set(venues) - set(accounts)
        needed: set[str] = set()
        for intent in intents:
            usable = set(intent.constraints.allowed_venues or venues) & set(venues)
            if usable and not usable & unlimited:
                needed |= usable
        holdings: dict[str, dict[str, Decimal] | None] = dict.fromkeys(unlimited)
        for name in sorted(needed):
            holdings[name] = dict(await accounts[name].balances())
        return holdings

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        now = self._context.clock()
        # In a fused chain the pass's records include the other stages' inputs (plan's
        # sep.executions, four records an intent): skipped by topic, before decoding them.
        pairs = [
            (record, event)
            for record in records
            if record.topic in self._inputs
            and (event := event_of(record)).topic == "intent.submitted"
        ]
        if not pairs:
            return
        # A redelivered intent gets the answer it was given: the funding check reads balances
        # that move, so a second look could say otherwise under the same seq.
        fresh = [
            e.payload_as(IntentSubmitted).intent
            for e in self._decisions.unanswered(e for _, e in pairs)
        ]
        holdings = await self._holdings(fresh) if self._context.venues and fresh else None
        topology = self._context.topology
        risk = self.risk
        if fresh:
            await risk.prepare()  # every strategy's state and the marks, as of now

        def reserve(event: Event, outputs: Sequence[Output]) -> None:
            if not accepted(outputs, self._topic):
                return
            # Counted as open at once: the next intent of the batch sees it.
            risk.approve(event.payload_as(IntentSubmitted).intent, now)
            if holdings is not None:
                _reserve(event, topology, holdings)

        control = self._context.control
        await self._decisions.answer(
            pairs,
            # An intent of a killed scope is refused before anything else (stages/killed.py).
            lambda event: (
                refuse_killed(event, control, self._topic, now)
                or validate_event(event, topology, self._venues, now, holdings, self._checks, risk)
            ),
            emit,
            then=reserve,
        )


def accepted(outputs: Sequence[Output], topic: str) -> bool:
    """``validate_event`` accepted the intent: risk.approved + intent.accepted, both on the
    stage's events topic (a rejection is one event, plus a dead letter for a wrong intent)."""
    return len(outputs) == 2 and outputs[0].topic == topic and outputs[1].topic == topic


def _reserve(
    event: Event, topology: Topology, holdings: dict[str, dict[str, Decimal] | None]
) -> None:
    """Deduct an accepted intent's spend from the batch's view of every venue it may use, so
    a batch of intents cannot together spend what the account has once."""
    intent = event.payload_as(IntentSubmitted).intent
    spend = _spend(intent, topology)
    if spend is None:
        return
    symbol, amount = spend
    allowed = intent.constraints.allowed_venues
    for venue, held in holdings.items():
        if held is not None and (allowed is None or venue in allowed) and symbol in held:
            held[symbol] -= amount


def build(context: StageContext) -> ValidateStage:
    return ValidateStage(context)
