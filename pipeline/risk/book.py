"""``RiskBook``: what risk needs to know of every strategy, built from the pipeline's own events.

    sep.intents.validated  intent.accepted            an open intent (its strategy, size, deadline)
    sep.plans              plan.created               the intent's strategy (its fills may come
                                                      from before this book started reading)
                           plan.rejected              the intent is over: nothing will trade
    sep.executions         exec.step_filled           a fill: position, cost basis, realised P&L,
                                                      traded notional of its UTC day
                           exec.completed | exec.failed | intent.expired
                                                      the intent is over

Pure: ``apply(event)`` in any order across topics (a fill may come before the acceptance it
belongs to: it waits until the strategy is known; an ending before the acceptance marks the
intent ended so it never opens).  Duplicates are harmless where it matters: a fill is counted
once per step id, an acceptance once per intent id.

Valuation follows the positions read model (``pipeline.store.positions``): a fill against the
quote asset is valued at what was paid or received, one between two other assets at the
reference price of the asset given up; the quote asset is cash.  So a strategy's equity is
``capital + realised + unrealised`` with unrealised at the marks (``RiskBook.valuation``).
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from pipeline.models.events import Event, ExecStepFilled, IntentAccepted, PlanCreated
from pipeline.models.intent import Intent, IntentType
from pipeline.store.positions import Holding

log = logging.getLogger(__name__)

ZERO = Decimal(0)
DAY_MS = 86_400_000
MAX_REMEMBERED = 200_000
"""Ended intents and orphan fills remembered at most (oldest forgotten first)."""

_HEAP_SLACK = 4096
"""Deadlines of ended intents ``RiskBook.expire`` keeps before it rebuilds its heap."""

_ENDINGS = frozenset(
    {"exec.completed", "exec.failed", "intent.expired", "intent.cancelled", "plan.rejected"}
)
ENDINGS = _ENDINGS
INTERESTING = _ENDINGS | {"intent.accepted", "plan.created", "exec.step_filled"}
"""Event types the book reads; a follower may skip the others undecoded."""

Price = Callable[[str], Decimal | None]
"""An asset's mark in the quote asset (None: unknown)."""


@dataclass
class OpenIntent:
    """An accepted intent that may still trade."""

    intent_id: str
    strategy_id: str
    kind: IntentType
    subject: str
    counter: str
    amount: Decimal
    """Of ``subject``, human units."""
    deadline_ms: int | None
    filled: Decimal = ZERO
    """Of ``subject``, from its fills so far."""

    @classmethod
    def of(cls, intent: Intent) -> OpenIntent:
        return cls(
            intent.id,
            intent.strategy_id,
            intent.type,
            intent.subject.asset.symbol,
            intent.counter.asset.symbol,
            intent.subject.amount or ZERO,
            intent.deadline_ms,
        )

    @property
    def remaining(self) -> Decimal:
        return max(self.amount - self.filled, ZERO)

    def deltas(self, price: Price, quantity: Decimal | None = None) -> dict[str, Decimal] | None:
        """What trading ``quantity`` (default: what remains) does to each asset held, signed;
        the counter side at the marks.  None if a mark is missing."""
        q = self.remaining if quantity is None else quantity
        ps, pc = price(self.subject), price(self.counter)
        if ps is None or pc is None or pc <= 0:
            return None
        sign = 1 if self.kind is IntentType.ACQUIRE else -1
        return {self.subject: sign * q, self.counter: -sign * q * ps / pc}

    def notional(self, price: Price) -> Decimal | None:
        ps = price(self.subject)
        return None if ps is None else self.remaining * ps


class Fill(NamedTuple):
    """What the book reads of an ``exec.step_filled`` (a tuple: one is made per fill every
    worker reads, and a frozen dataclass' ``__init__`` cost more than the rest of it)."""

    step_id: str
    asset_in: str
    amount_in: Decimal
    asset_out: str
    amount_out: Decimal
    at_ms: int
    """The event's time: the UTC day whose traded notional it counts in."""

    @classmethod
    def of(cls, filled: ExecStepFilled, event: Event) -> Fill:
        return cls(
            filled.step_id,
            filled.asset_in,
            filled.amount_in,
            filled.asset_out,
            filled.amount_out,
            int(event.timestamp.timestamp() * 1000),
        )


@dataclass
class StrategyBook:
    holdings: dict[str, Holding] = field(default_factory=dict)
    open: dict[str, OpenIntent] = field(default_factory=dict)
    traded: dict[int, Decimal] = field(default_factory=dict)
    """UTC day number -> notional filled that day, in the quote asset."""
    fills: int = 0

    def traded_on(self, day: int) -> Decimal:
        return self.traded.get(day, ZERO)


@dataclass(frozen=True)
class Valuation:
    realised: Decimal
    unrealised: Decimal
    unpriced: tuple[str, ...] = ()
    """Assets held without a mark (valued at their cost: no unrealised P&L counted)."""

    @property
    def pnl(self) -> Decimal:
        return self.realised + self.unrealised


class RiskBook:
    """Positions, open intents, traded notional and P&L per strategy (see the module doc)."""

    def __init__(self, quote: str, reference: Mapping[str, Decimal]) -> None:
        self.quote = quote
        self._reference = reference
        self.strategies: dict[str, StrategyBook] = {}
        self._strategy_of: dict[str, str] = {}
        """intent id -> strategy id (from its acceptance or its plan)."""
        self._accepted: set[str] = set()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._orphans: OrderedDict[str, list[Fill]] = OrderedDict()
        """intent id -> fills that came before its strategy was known."""
        self._steps: OrderedDict[str, None] = OrderedDict()
        """Step ids whose fill is counted (a redelivered report is counted once)."""
        self._deadlines: list[tuple[int, str, str]] = []
        """A heap of (deadline, intent id, strategy id) of the intents opened with a deadline,
        so ``expire`` looks at the ones past it only (an ended one stays until then)."""
        self._expected: dict[str, OpenIntent] = {}
        """This process' own approvals not read back yet (``expect``), by intent id."""
        self.applied = 0

    # -------------------------------------------------------------------- feeding

    def apply(self, event: Event) -> bool:
        """Take one event into account; whether it was one the book reads."""
        kind = event.topic
        if kind not in INTERESTING:
            return False
        if kind == "intent.accepted":
            self.accept(OpenIntent.of(event.payload_as(IntentAccepted).intent))
        elif kind == "plan.created":
            intent = event.payload_as(PlanCreated).intent
            self.know(intent.id, intent.strategy_id)
        elif kind == "exec.step_filled":
            self.fill(event.correlation_id, Fill.of(event.payload_as(ExecStepFilled), event))
        else:
            self.end(event.correlation_id)
        return True

    # The same, one fact at a time: what ``apply`` makes of an event, and what a feed that
    # reads records without decoding them whole (``pipeline.risk.wire``) calls directly.

    def accept(self, opened: OpenIntent) -> None:
        """An ``intent.accepted``."""
        self.applied += 1
        intent_id = opened.intent_id
        self._know(intent_id, opened.strategy_id)
        if intent_id not in self._accepted and intent_id not in self._ended:
            self._accepted.add(intent_id)
            self.book(opened.strategy_id).open[intent_id] = opened
            if opened.deadline_ms is not None:
                heapq.heappush(self._deadlines, (opened.deadline_ms, intent_id, opened.strategy_id))

    def expect(self, opened: OpenIntent) -> None:
        """This process approved ``opened``: its ``intent.accepted`` will come back with the
        same intent, so the feed can open this one instead of decoding the record
        (``take_expected``).  Shared, not copied: the engine reads its own only until the
        book knows the intent."""
        self._expected[opened.intent_id] = opened

    def take_expected(self, intent_id: str) -> OpenIntent | None:
        return self._expected.pop(intent_id, None)

    def forget_expected(self, intent_id: str) -> None:
        """The engine gave up waiting for it (``expect``)."""
        self._expected.pop(intent_id, None)

    def know(self, intent_id: str, strategy_id: str) -> None:
        """A ``plan.created``: the intent's strategy (its fills may come before its
        acceptance was read, or from before this book started)."""
        self.applied += 1
        self._know(intent_id, strategy_id)

    def fill(self, intent_id: str, fill: Fill) -> None:
        """An ``exec.step_filled``."""
        self.applied += 1
        if intent_id in self._strategy_of:
            self._fill(intent_id, fill)
        else:
            self._orphans.setdefault(intent_id, []).append(fill)
            _trim(self._orphans)

    def knows_strategy(self, intent_id: str) -> bool:
        """Whether the intent's strategy is known (its ``plan.created`` adds nothing then)."""
        return intent_id in self._strategy_of

    def end(self, intent_id: str) -> None:
        """An ending event of ``intent_id`` (``ENDINGS``), known by its id alone."""
        self.applied += 1
        self._end(intent_id)

    def _know(self, intent_id: str, strategy_id: str) -> None:
        if intent_id in self._strategy_of:
            return
        self._strategy_of[intent_id] = strategy_id
        for fill in self._orphans.pop(intent_id, ()):
            self._fill(intent_id, fill)

    def _end(self, intent_id: str) -> None:
        strategy = self._strategy_of.get(intent_id)
        if strategy is not None:
            self.book(strategy).open.pop(intent_id, None)
        self._ended[intent_id] = None
        _trim(self._ended)

    def _fill(self, intent_id: str, fill: Fill) -> None:
        steps = self._steps
        if fill.step_id in steps:
            return
        steps[fill.step_id] = None
        if len(steps) > MAX_REMEMBERED:
            _trim(steps)
        book = self.book(self._strategy_of[intent_id])
        value = self.fill_value(fill)
        self._trade(book.holdings, fill.asset_in, -fill.amount_in, value)
        self._trade(book.holdings, fill.asset_out, fill.amount_out, value)
        day = fill.at_ms // DAY_MS
        book.traded[day] = book.traded_on(day) + value
        if len(book.traded) > 1:  # else it holds ``day`` alone
            for old in [d for d in book.traded if d < day - 1]:
                del book.traded[old]
        book.fills += 1
        opened = book.open.get(intent_id)
        if opened is not None:
            if fill.asset_out == opened.subject:
                opened.filled += fill.amount_out
            elif fill.asset_in == opened.subject:
                opened.filled += fill.amount_in

    def _trade(
        self, holdings: dict[str, Holding], asset: str, quantity: Decimal, value: Decimal
    ) -> None:
        held = holdings.get(asset)
        if held is None:
            held = holdings[asset] = Holding()
        if asset != self.quote:
            held.trade(quantity, value)
        elif quantity:
            # Cash: no cost basis, no P&L -- only the quantity ``Holding.trade`` would reach
            # (its cost and realised P&L were thrown away here before; amounts are finite).
            held.quantity += quantity

    def fill_value(self, fill: Fill) -> Decimal:
        if fill.asset_out == self.quote:
            return fill.amount_out
        if fill.asset_in == self.quote:
            return fill.amount_in
        return fill.amount_in * self._reference.get(fill.asset_in, ZERO)

    def expire(self, now_ms: int, grace_ms: int) -> int:
        """Close open intents ``grace_ms`` past their deadline whose end was never heard.

        Asked once per batch: the deadlines' heap is read only as far as the first intent
        not past it, not every open intent each time."""
        closed = 0
        heap = self._deadlines
        while heap and now_ms > heap[0][0] + grace_ms:
            deadline, intent_id, strategy_id = heapq.heappop(heap)
            book = self.strategies.get(strategy_id)
            if book is None:
                continue
            opened = book.open.get(intent_id)
            if opened is not None and opened.deadline_ms == deadline:
                del book.open[intent_id]
                closed += 1
        if len(heap) > _HEAP_SLACK and len(heap) > 2 * self._open_count():
            # Mostly intents that ended before their deadline: rebuilt from the open ones
            # (amortised: at most once per as many endings as intents open).
            self._deadlines = [
                (o.deadline_ms, o.intent_id, o.strategy_id)
                for book in self.strategies.values()
                for o in book.open.values()
                if o.deadline_ms is not None
            ]
            heapq.heapify(self._deadlines)
        return closed

    def _open_count(self) -> int:
        return sum(len(book.open) for book in self.strategies.values())

    # -------------------------------------------------------------------- reading

    def book(self, strategy_id: str) -> StrategyBook:
        found = self.strategies.get(strategy_id)
        if found is None:
            found = self.strategies[strategy_id] = StrategyBook()
        return found

    def knows(self, intent_id: str) -> bool:
        """The book has seen the intent's acceptance (or its end)."""
        return intent_id in self._accepted or intent_id in self._ended

    def positions(self, strategy_id: str) -> dict[str, Decimal]:
        book = self.strategies.get(strategy_id)
        if book is None:
            return {}
        return {a: h.quantity for a, h in book.holdings.items() if h.quantity}

    def open_intents(self, strategy_id: str) -> Iterator[OpenIntent]:
        book = self.strategies.get(strategy_id)
        return iter(book.open.values()) if book is not None else iter(())

    def traded_today(self, strategy_id: str, now_ms: int) -> Decimal:
        book = self.strategies.get(strategy_id)
        return book.traded_on(now_ms // DAY_MS) if book is not None else ZERO

    def valuation(self, strategy_id: str, price: Price) -> Valuation:
        book = self.strategies.get(strategy_id)
        if book is None:
            return Valuation(ZERO, ZERO)
        realised = unrealised = ZERO
        unpriced: list[str] = []
        for asset, holding in sorted(book.holdings.items()):
            realised += holding.realised
            if asset == self.quote or not holding.quantity:
                continue
            mark = price(asset)
            if mark is None:
                unpriced.append(asset)
                continue
            unrealised += holding.quantity * mark - holding.cost
        return Valuation(realised, unrealised, tuple(unpriced))


def _trim(remembered: OrderedDict[str, Any]) -> None:
    while len(remembered) > MAX_REMEMBERED:
        remembered.popitem(last=False)
