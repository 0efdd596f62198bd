"""The exposure checks of one intent against its strategy's state and limits (pure).

What an intent would do, at the marks (``OpenIntent.deltas``): ACQUIRE 2 WETH with USDC is
WETH +2 and USDC -6,000 (cash: no limit applies to the quote asset); DISPOSE 0.1 WBTC for
WETH is WBTC -0.1 and WETH +2.  Each asset's **projected position** is what the strategy
holds (fills) plus what its open intents may still do, so a quick series of intents cannot
each pass against the same position.

    rule                 refuses the intent when
    risk_state           the strategy or the platform is HALTED; or REDUCING and the
                         intent does not reduce exposure
    max_open_intents     open intents (with this one) would exceed the limit
    max_daily_notional   traded today + open intents' remaining notional + this one > limit
    max_position         an asset's projected position grows, beyond the limit in value
    max_concentration    an asset's projected position grows, beyond that share of equity

An intent **reduces exposure** when no asset's projected position grows in size and one
shrinks: selling part of a long, buying back part of a short.  A sale larger than the long
flips it into a short: that grows exposure, and is refused in REDUCING.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipeline.models.intent import Intent, IntentType
from pipeline.plugins.risk import RiskBreach
from pipeline.risk.book import OpenIntent, Price
from pipeline.risk.breakers import RiskState
from pipeline.topology.models import StrategyLimits

ZERO = Decimal(0)


@dataclass(frozen=True)
class StrategyView:
    """What the checks see of one strategy (built once per batch, moved on by each approval:
    ``with_intent``, so a batch costs one pass over the open intents, not one per intent)."""

    strategy_id: str
    positions: Mapping[str, Decimal]
    """Held now (fills), per asset."""
    projected: Mapping[str, Decimal]
    """Held plus what the open intents may still do, per asset (the quote asset left out)."""
    open_count: int
    """Accepted and not over: the book's, and this worker's approvals not in it yet."""
    open_notional: Decimal
    """What the open intents may still trade, at the marks."""
    traded_today: Decimal
    equity: Decimal | None
    """``capital + realised + unrealised`` (None: no capital configured)."""
    state: RiskState = RiskState.NORMAL
    state_why: str = ""
    """Why the state is what it is (the breaker's message), for the rejection."""

    @classmethod
    def of(
        cls,
        strategy_id: str,
        positions: Mapping[str, Decimal],
        opened: Sequence[OpenIntent],
        price: Price,
        quote: str,
        **rest: Any,
    ) -> StrategyView:
        projected = {a: q for a, q in positions.items() if a != quote}
        # Deltas and notionals are linear in what remains, so the open intents are summed per
        # (kind, subject, counter) first and priced once per group: a strategy with thousands
        # of intents open (a backlog) costs additions, not a mark look-up and a division each.
        # (The sums are exact; the group's one division rounds where each intent's did.)
        remaining: dict[tuple[IntentType, str, str], Decimal] = {}
        for o in opened:
            key = (o.kind, o.subject, o.counter)
            remaining[key] = remaining.get(key, ZERO) + o.remaining
        committed = ZERO
        for (kind, subject, counter), quantity in remaining.items():
            group = OpenIntent("", strategy_id, kind, subject, counter, quantity, None)
            for asset, delta in (group.deltas(price) or {}).items():
                if asset != quote:
                    projected[asset] = projected.get(asset, ZERO) + delta
            committed += group.notional(price) or ZERO
        return cls(strategy_id, positions, projected, len(opened), committed, **rest)

    def with_intent(
        self, opened: OpenIntent, price: Price, quote: str, exposure: Exposure | None = None
    ) -> StrategyView:
        """This view with one more open intent (an approval in the same batch).

        ``exposure``: ``opened``'s, as judged at the same marks (``Exposure.of``): not
        computed again."""
        deltas = opened.deltas(price) if exposure is None else exposure.deltas
        notional = opened.notional(price) if exposure is None else exposure.notional
        projected = dict(self.projected)
        for asset, delta in (deltas or {}).items():
            if asset != quote:
                projected[asset] = projected.get(asset, ZERO) + delta
        # A copy with three fields changed, made by its ``__dict__``: a frozen dataclass'
        # ``__init__`` sets each of the nine fields through ``object.__setattr__`` (~0.7 us
        # more, once per approval), and ``dataclasses.replace`` costs more still.
        moved = object.__new__(StrategyView)
        fields = moved.__dict__
        fields.update(self.__dict__)
        fields["projected"] = projected
        fields["open_count"] = self.open_count + 1
        fields["open_notional"] = self.open_notional + (notional or ZERO)
        return moved


@dataclass(frozen=True)
class Exposure:
    """What one intent would do at the marks: its open form, its deltas and notional."""

    opened: OpenIntent
    deltas: dict[str, Decimal]
    notional: Decimal

    @classmethod
    def of(cls, intent: Intent, price: Price) -> Exposure:
        """Raises ``ValueError`` if one of the intent's assets has no mark."""
        opened = OpenIntent.of(intent)
        deltas = opened.deltas(price)
        notional = opened.notional(price)
        if deltas is None or notional is None:
            raise ValueError(f"{intent.id}: unpriced assets reached the exposure checks")
        return cls(opened, deltas, notional)


def reduces(before: Mapping[str, Decimal], deltas: Mapping[str, Decimal]) -> bool:
    """No position grows in size and one shrinks (see the module doc)."""
    shrinks = False
    for asset, delta in deltas.items():
        was = before.get(asset, ZERO)
        after = was + delta
        if abs(after) > abs(was) or (was and after and (after > 0) != (was > 0)):
            return False
        shrinks = shrinks or abs(after) < abs(was)
    return shrinks


def exposure_breaches(
    intent: Intent,
    limits: StrategyLimits,
    view: StrategyView,
    price: Price,
    quote: str,
    exposure: Exposure | None = None,
) -> list[RiskBreach]:
    """Every rule the intent breaks.  ``price`` must know the intent's two assets (the
    stage refuses an unpriced intent before asking).  ``exposure``: the intent's at
    ``price``, if the caller has it (``Exposure.of``)."""
    if exposure is None:
        exposure = Exposure.of(intent, price)
    deltas, notional = exposure.deltas, exposure.notional
    held = {a: d for a, d in deltas.items() if a != quote}
    before = view.projected
    breaches: list[RiskBreach] = []
    if view.state is RiskState.HALTED:
        breaches.append(
            RiskBreach(
                "risk_state",
                f"{view.state_why or 'the strategy is HALTED'}: no intent passes until a reset",
                "NORMAL or REDUCING",
                "HALTED",
            )
        )
    elif view.state is RiskState.REDUCING and not reduces(before, held):
        moves = ", ".join(
            f"{a} {_q(before.get(a, ZERO))} -> {_q(before.get(a, ZERO) + d)}"
            for a, d in sorted(held.items())
        )
        breaches.append(
            RiskBreach(
                "risk_state",
                f"{view.state_why or 'the strategy is REDUCING'}: only exposure-reducing "
                f"intents pass; this one moves {moves or 'nothing held'}",
                "an exposure-reducing intent",
                "increases exposure",
            )
        )
    count = view.open_count + 1
    if limits.max_open_intents is not None and count > limits.max_open_intents:
        breaches.append(
            RiskBreach(
                "max_open_intents",
                f"{view.strategy_id} would have {count} open intents, "
                f"the limit is {limits.max_open_intents}",
                str(limits.max_open_intents),
                str(count),
            )
        )
    if limits.max_daily_notional is not None:
        committed = view.open_notional
        total = view.traded_today + committed + notional
        if total > limits.max_daily_notional:
            breaches.append(
                RiskBreach(
                    "max_daily_notional",
                    f"{view.strategy_id} traded {_m(view.traded_today)} {quote} today, "
                    f"{_m(committed)} more is open and this intent adds {_m(notional)}: "
                    f"{_m(total)} exceeds the daily limit {_m(limits.max_daily_notional)} {quote}",
                    _m(limits.max_daily_notional),
                    _m(total),
                )
            )
    for asset, delta in sorted(held.items()):
        was = before.get(asset, ZERO)
        after = was + delta
        if abs(after) <= abs(was):
            continue  # shrinks this position: never refused by a position rule
        mark = price(asset)
        if mark is None:
            continue
        value = abs(after) * mark
        if limits.max_position is not None and value > limits.max_position:
            breaches.append(
                RiskBreach(
                    "max_position",
                    f"{view.strategy_id}'s {asset} position would be {_q(after)} {asset} "
                    f"= {_m(value)} {quote} at {_m(mark)}, "
                    f"the limit is {_m(limits.max_position)} {quote}",
                    _m(limits.max_position),
                    _m(value),
                )
            )
        if limits.max_concentration is not None and view.equity is not None:
            share = value / view.equity if view.equity > 0 else None
            if share is None or share > limits.max_concentration:
                shown = f"{share:.2%}" if share is not None else "all (equity <= 0)"
                breaches.append(
                    RiskBreach(
                        "max_concentration",
                        f"{view.strategy_id}'s {asset} position would be {_m(value)} {quote}, "
                        f"{shown} of its equity {_m(view.equity)} {quote}; "
                        f"the limit is {limits.max_concentration:.2%}",
                        f"{limits.max_concentration:f}",
                        f"{share:.6f}" if share is not None else "inf",
                    )
                )
    return breaches


def _m(value: Decimal) -> str:
    """Money as text: two decimals."""
    return f"{value:.2f}"


def _q(value: Decimal) -> str:
    """A quantity as text: at most 8 decimals, no trailing zeros."""
    text = f"{value:.8f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
