"""What the validate stage holds of risk: the book, its own approvals in flight, the marks,
the limits in force, and the breakers' evaluation.

    prepare(now)            once per batch: the book synced, marks refreshed, own approvals
                            the book now has dropped, intents past deadline + grace closed
    judge(intent, now)      the exposure and breaker-state breaches of one intent
    approve(intent, now)    an accepted intent counts as open at once (pending until the
                            book reads it back from sep.intents.validated)
    evaluate(now)           marks every scope to market, publishes risk.state_changed where a
                            threshold is crossed, an epoch begins or the UTC day turns

**Who publishes breaker changes.**  Every worker evaluates (every ``evaluate_interval_ms``)
and any may publish: there is no leader to lose.  A change is the key's next seq
(``risk/<scope>``); two workers crossing the same threshold at once both publish that seq,
and every reader keeps the first the broker ordered (``ControlState.apply``: a seq already
held is ignored), so the state is the same everywhere and the loser's duplicate is only a
second record in the topic (its numbers a few ms apart; the compacted topic keeps the
later one).  A worker does not publish a scope again while its own change is in flight.
States only escalate here; NORMAL comes back only by a reset (operator, or the UTC day).

**Baseline and peak.**  An epoch's baseline is published with it (``rule: "epoch"``), so a
restarted worker measures loss from the same number.  The peak is kept in memory by each
worker from the published peak on: a restart of *every* worker forgets a peak reached
since the last published change (the drawdown is then measured from a lower peak).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import redis.asyncio as aioredis

from pipeline.control.keys import GLOBAL, risk_key, strategy_scope
from pipeline.control.publish import control_event
from pipeline.models.base import wire_amount
from pipeline.models.control import RiskStateChanged
from pipeline.models.events import Event
from pipeline.models.intent import Intent
from pipeline.plugins.risk import RiskBreach
from pipeline.risk.book import DAY_MS, OpenIntent, RiskBook
from pipeline.risk.breakers import Marks, RiskState, judge
from pipeline.risk.checks import Exposure, StrategyView, exposure_breaches
from pipeline.risk.limits import resolve, thresholds
from pipeline.risk.prices import Mark, MarketMarks, Unpriced
from pipeline.risk.usage import usage_report
from pipeline.stages.base import StageContext
from pipeline.stages.execute import RECEIPT_GRACE_S
from pipeline.store import risk_usage
from pipeline.topology.models import BreakerLimits, StrategyLimits

log = logging.getLogger(__name__)

ZERO = Decimal(0)
AFTER_DEADLINE_MS = int(RECEIPT_GRACE_S * 1000) + 60_000
"""After its deadline an intent can still fill for the executor's receipt grace; a minute
more and an intent never reported as ended is taken as over (its reports went elsewhere)."""
PENDING_TTL_MS = 30_000
"""An approval the book has not read back within this is dropped (it reads it in ms)."""
INFLIGHT_MS = 5_000
"""How long a worker waits to read back its own change before it may publish again."""
SYSTEM = "risk-engine"
"""The actor of the changes the engine makes itself."""
CHECKS = (
    "risk_state",
    "max_open_intents",
    "max_daily_notional",
    "max_position",
    "max_concentration",
)
"""The rules ``judge`` applies (in ``risk.approved.checks``)."""


@dataclass(frozen=True)
class ScopeState:
    """A scope's breaker as the control plane holds it."""

    state: RiskState
    record: RiskStateChanged | None
    seq: int


class RiskEngine:
    def __init__(self, context: StageContext) -> None:
        self._context = context
        topology = context.topology
        self._risk = topology.risk
        self.quote = self._risk.quote_asset
        self.source = context.risk
        self.book = (
            self.source.book
            if self.source is not None
            else RiskBook(self.quote, self._risk.reference_prices)
        )
        decimals = {a.symbol: a.decimals for a in topology.assets}
        self.marks = MarketMarks(self._risk, decimals, context, context.clock)
        self._pending: dict[str, tuple[OpenIntent, int]] = {}
        self._pending_of: dict[str, dict[str, OpenIntent]] = {}
        """``_pending`` by strategy, in the same order: a view reads its strategy's only (a scan
        of every pending intent per strategy was 1.3 % of a worker flat out, 16 strategies)."""
        self._views: dict[str, StrategyView] = {}
        self._judged: tuple[Intent, Exposure] | None = None
        """The last intent ``judge`` saw and its exposure (for its ``approve``)."""
        self._limits: dict[str, StrategyLimits] = {}
        self._limits_version = -1
        """Per strategy, its view in this batch (see ``view``)."""
        self._peaks: dict[tuple[str, int], Decimal] = {}
        self._inflight: dict[str, tuple[int, int]] = {}
        """Control key -> (seq published, when)."""
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.scope_marks: dict[str, dict[str, str]] = {}
        """Per scope, the numbers of its last evaluation (for the usage report)."""

    # -------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.source is not None and self.source.background and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="risk-breakers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        interval = self._risk.evaluate_interval_ms / 1000
        settings = self._context.settings
        client = aioredis.from_url(settings.redis)
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.prepare()
                    now = self._context.clock()
                    await self.evaluate(now)
                except Exception:
                    log.exception("risk evaluation failed; trying again")
                    continue
                with contextlib.suppress(Exception):  # Redis away: the report just expires
                    await risk_usage.publish(client, settings.redis_prefix, usage_report(self, now))
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    # -------------------------------------------------------------------- per batch

    async def prepare(self) -> None:
        now = self._context.clock()
        self._views.clear()
        self._judged = None  # the marks move: an exposure is reused within a batch only
        if self.source is not None:
            await self.source.sync()
        await self.marks.refresh()
        for intent_id, (opened, at) in list(self._pending.items()):
            if self.book.knows(intent_id) or now - at > PENDING_TTL_MS:
                del self._pending[intent_id]
                of_strategy = self._pending_of[opened.strategy_id]
                del of_strategy[intent_id]
                if not of_strategy:
                    del self._pending_of[opened.strategy_id]
                self.book.forget_expected(intent_id)
        self.book.expire(now, AFTER_DEADLINE_MS)

    def approve(self, intent: Intent, now: int) -> None:
        if self.book.knows(intent.id) or intent.id in self._pending:
            return
        # The intent just judged (validate approves right after judging, at the same marks):
        # its exposure is not computed again.
        judged = self._judged
        self._judged = None
        exposure = judged[1] if judged is not None and judged[0] is intent else None
        opened = OpenIntent.of(intent) if exposure is None else exposure.opened
        self._pending[intent.id] = (opened, now)
        self._pending_of.setdefault(opened.strategy_id, {})[intent.id] = opened
        self.book.expect(opened)
        view = self._views.get(intent.strategy_id)
        if view is not None:
            self._views[intent.strategy_id] = view.with_intent(
                opened, self.price, self.quote, exposure
            )

    def price(self, asset: str) -> Decimal | None:
        found = self.marks.mark(asset)
        return found.price if isinstance(found, Mark) else None

    def mark(self, asset: str) -> Mark | Unpriced:
        return self.marks.mark(asset)

    def limits(self, strategy_id: str) -> StrategyLimits:
        """The rules in force, resolved again only after a control change (pydantic's
        validation of the merged rules costs ~13 us; intents ask several times each)."""
        control = self._context.control
        version = control.version if control is not None else 0
        if version != self._limits_version:
            self._limits.clear()
            self._limits_version = version
        found = self._limits.get(strategy_id)
        if found is None:
            changes = control.limits(strategy_id) if control is not None else None
            found = self._limits[strategy_id] = resolve(self._risk, strategy_id, changes)
        return found

    def scope_state(self, scope: str) -> ScopeState:
        control = self._context.control
        event = control.get(risk_key(scope)) if control is not None else None
        if event is None or event.topic != "risk.state_changed":
            return ScopeState(RiskState.NORMAL, None, event.seq if event else 0)
        record = event.payload_as(RiskStateChanged)
        return ScopeState(RiskState(record.state), record, event.seq)

    def effective_state(self, strategy_id: str) -> tuple[RiskState, str]:
        """The stricter of the strategy's and the global breaker, and why."""
        own = self.scope_state(strategy_scope(strategy_id))
        everyone = self.scope_state(GLOBAL)
        worst = everyone if everyone.state.severity > own.state.severity else own
        why = worst.record.message if worst.record is not None else ""
        return worst.state, why

    def view(self, strategy_id: str, now: int) -> StrategyView:
        """The strategy as the checks see it; within a batch (until the next ``prepare``)
        built once and moved on by each approval."""
        found = self._views.get(strategy_id)
        if found is not None:
            return found
        limits = self.limits(strategy_id)
        opened = list(self.book.open_intents(strategy_id))
        pending = self._pending_of.get(strategy_id)
        if pending:
            opened += [o for o in pending.values() if not self.book.knows(o.intent_id)]
        equity = None
        if limits.capital is not None:
            equity = limits.capital + self.book.valuation(strategy_id, self.marks.last).pnl
        state, why = self.effective_state(strategy_id)
        view = StrategyView.of(
            strategy_id,
            self.book.positions(strategy_id),
            opened,
            self.price,
            self.quote,
            traded_today=self.book.traded_today(strategy_id, now),
            equity=equity,
            state=state,
            state_why=why,
        )
        self._views[strategy_id] = view
        return view

    def judge(
        self, intent: Intent, now: int, marks: tuple[Mark, Mark] | None = None
    ) -> list[RiskBreach]:
        """The intent's exposure and state breaches (its assets must have marks).

        ``marks``: its subject's and counter's, as the caller just asked them (``mark``):
        the checks price the intent's two assets ~4 times, each a ``mark`` (a clock read
        and a memo) otherwise."""
        strategy = intent.strategy_id
        price: Callable[[str], Decimal | None] = self.price
        if marks is not None:
            price = {
                intent.subject.asset.symbol: marks[0].price,
                intent.counter.asset.symbol: marks[1].price,
            }.get
        exposure = Exposure.of(intent, price)
        self._judged = (intent, exposure)
        return exposure_breaches(
            intent,
            self.limits(strategy),
            self.view(strategy, now),
            price,
            self.quote,
            exposure,
        )

    # -------------------------------------------------------------------- breakers

    def strategies(self) -> list[str]:
        return sorted(set(self.book.strategies) | set(self._risk.strategies))

    def equity(self, strategy_id: str) -> Decimal:
        capital = self.limits(strategy_id).capital or ZERO
        return capital + self.book.valuation(strategy_id, self.marks.last).pnl

    async def evaluate(self, now: int) -> list[Event]:
        """Publish what changed (see the module doc); the events published."""
        out: list[Event] = []
        total = capitals = ZERO
        for strategy in self.strategies():
            equity = self.equity(strategy)
            capital = self.limits(strategy).capital or ZERO
            total += equity
            capitals += capital
            event = self._judge_scope(
                strategy_scope(strategy), equity, self.limits(strategy), now, capital
            )
            if event is not None:
                out.append(event)
        event = self._judge_scope(GLOBAL, total, self._risk.global_, now, capitals)
        if event is not None:
            out.append(event)
        for event in out:
            await self._publish(event, now)
        return out

    def _judge_scope(
        self,
        scope: str,
        equity: Decimal,
        limits: StrategyLimits | BreakerLimits,
        now: int,
        capital: Decimal,
    ) -> Event | None:
        """``capital``: the scope's equity before it ever traded, the first epoch's baseline
        (its first trades may fill before any worker evaluates it: they count)."""
        limit_text = thresholds(limits)
        if not limit_text:
            return None  # no breaker configured for it
        key = risk_key(scope)
        held = self.scope_state(scope)
        inflight = self._inflight.get(key)
        if inflight is not None and held.seq < inflight[0] and now - inflight[1] < INFLIGHT_MS:
            return None
        record = held.record
        if (
            self._risk.breaker_reset == "utc_day"
            and record is not None
            and record.epoch_ms // DAY_MS < now // DAY_MS
        ):
            return self._event(
                held,
                scope,
                RiskState.NORMAL,
                "daily_reset",
                f"{scope}: a new UTC day; the epoch starts at equity {equity:.2f}",
                Marks(equity, equity, equity),
                limit_text,
                now,
                epoch_ms=now,
            )
        if record is None or record.baseline_equity is None:
            # The first epoch starts from the capital; after a reset, from the equity now.
            baseline = capital if record is None else equity
            return self._event(
                held,
                scope,
                held.state,
                "epoch",
                f"{scope}: the epoch starts at equity {baseline:.2f} {self.quote}",
                Marks(equity, baseline, max(baseline, equity)),
                limit_text,
                now,
                epoch_ms=now,
            )
        peak_key = (scope, record.epoch_ms)
        peak = max(self._peaks.get(peak_key, ZERO), record.peak_equity or ZERO, equity)
        self._peaks[peak_key] = peak
        marks = Marks(equity, record.baseline_equity, peak)
        self.scope_marks[scope] = {
            "state": held.state.value,
            "equity": _s(equity),
            "baseline": _s(marks.baseline),
            "peak": _s(peak),
            "pnl": _s(marks.pnl),
            "loss": _s(marks.loss),
            "drawdown": _s(wire_amount(marks.drawdown)),
            "epochMs": str(record.epoch_ms),
        }
        verdict = judge(marks, limits)
        if verdict.state.severity <= held.state.severity:
            return None
        return self._event(
            held,
            scope,
            verdict.state,
            verdict.rule or "",
            verdict.message(scope, self.quote),
            marks,
            limit_text,
            now,
            epoch_ms=record.epoch_ms,
            limit=verdict.limit,
            actual=verdict.actual,
        )

    def _event(
        self,
        held: ScopeState,
        scope: str,
        state: RiskState,
        rule: str,
        message: str,
        marks: Marks,
        limit_text: dict[str, str],
        now: int,
        *,
        epoch_ms: int,
        limit: Decimal | None = None,
        actual: Decimal | None = None,
    ) -> Event:
        payload = RiskStateChanged(
            scope=scope,
            state=state.value,
            previous=held.state.value,
            rule=rule,
            message=message,
            epoch_ms=epoch_ms,
            equity=wire_amount(marks.equity),
            baseline_equity=wire_amount(marks.baseline),
            peak_equity=wire_amount(marks.peak),
            pnl=wire_amount(marks.pnl),
            drawdown=wire_amount(marks.drawdown),
            limit=None if limit is None else f"{limit:f}",
            actual=None if actual is None else f"{actual:f}",
            thresholds=limit_text,
            actor=SYSTEM,
            reason=message,
        )
        return control_event(risk_key(scope), "risk.state_changed", payload, held.seq + 1, now)

    async def _publish(self, event: Event, now: int) -> None:
        if self.source is None:
            log.warning("no control topic to publish on", extra={"key": event.correlation_id})
            return
        self._inflight[event.correlation_id] = (event.seq, now)
        await self.source.publish(event)
        self.published += 1
        record = event.payload_as(RiskStateChanged)
        level = logging.WARNING if record.state != record.previous else logging.INFO
        log.log(
            level,
            "risk state",
            extra={
                "scope": record.scope,
                "state": record.state,
                "rule": record.rule,
                "why": record.message,
            },
        )


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"
