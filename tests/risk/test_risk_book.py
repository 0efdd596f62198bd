"""The RiskBook: open intents, positions, traded notional and P&L from the pipeline's events."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from pipeline.models.intent import IntentType
from pipeline.risk import book as book_module
from pipeline.risk.book import DAY_MS, Fill, OpenIntent, RiskBook
from pipeline.store.positions import Holding
from tests.risk.risk_support import T0, accepted, completed, filled, intent, plan_rejected

D = Decimal


def book() -> RiskBook:
    return RiskBook("USDC", {"WETH": D(3000), "WBTC": D(60000)})


def test_an_acceptance_opens_an_intent_and_its_end_closes_it() -> None:
    b, i, j = book(), intent(), intent(strategy="s1")
    b.apply(accepted(i))
    b.apply(accepted(j))
    assert {o.intent_id for o in b.open_intents("s1")} == {i.id, j.id}
    b.apply(completed(i))
    b.apply(plan_rejected(j))
    assert list(b.open_intents("s1")) == []
    assert b.knows(i.id)


def test_an_end_read_before_the_acceptance_never_opens_it() -> None:
    b, i = book(), intent()
    b.apply(completed(i))  # another topic, read first
    b.apply(accepted(i))
    assert list(b.open_intents("s1")) == []


def test_fills_make_positions_cost_and_realised_pnl_counted_once_per_step() -> None:
    b, buy, sell = book(), intent(), intent("DISPOSE", amount="1")
    b.apply(accepted(buy))
    fill = filled(buy, "USDC", "6000", "WETH", "2")
    b.apply(fill)
    b.apply(fill)  # a redelivered report
    assert b.positions("s1") == {"WETH": D(2), "USDC": D(-6000)}
    b.apply(accepted(sell))
    b.apply(filled(sell, "WETH", "1", "USDC", "3500"))
    assert b.positions("s1") == {"WETH": D(1), "USDC": D(-2500)}
    value = b.valuation("s1", lambda a: {"WETH": D(2800), "USDC": D(1)}.get(a))
    assert value.realised == D(500)  # sold at 3500 what cost 3000
    assert value.unrealised == D(-200)  # 1 WETH cost 3000, marked at 2800
    assert b.traded_today("s1", T0) == D(9500)
    assert b.traded_today("s1", T0 + DAY_MS) == D(0)  # a new UTC day


def test_a_fill_before_its_strategy_is_known_waits_for_it() -> None:
    b, i = book(), intent(strategy="late")
    b.apply(filled(i, "USDC", "3000", "WETH", "1"))
    assert b.positions("late") == {}
    b.apply(accepted(i))
    assert b.positions("late") == {"WETH": D(1), "USDC": D(-3000)}


def test_a_partly_filled_open_intent_counts_only_what_remains() -> None:
    b, i = book(), intent(amount="3")
    b.apply(accepted(i))
    b.apply(filled(i, "USDC", "3000", "WETH", "1", step="s-a"))
    (opened,) = b.open_intents("s1")
    assert opened.remaining == D(2)
    deltas = opened.deltas(lambda a: {"WETH": D(3000), "USDC": D(1)}[a])
    assert deltas == {"WETH": D(2), "USDC": D(-6000)}


def test_intents_past_deadline_and_grace_are_closed() -> None:
    b, i = book(), intent(window_ms=1000)
    b.apply(accepted(i))
    assert b.expire(T0 + 1000 + 500, grace_ms=1000) == 0
    assert b.expire(T0 + 1000 + 1001, grace_ms=1000) == 1
    assert list(b.open_intents("s1")) == []


def test_a_cross_fill_is_valued_at_the_reference_price_of_what_was_given() -> None:
    b, i = book(), intent("DISPOSE", "WBTC", "0.1", counter="WETH")
    b.apply(accepted(i))
    b.apply(filled(i, "WBTC", "0.1", "WETH", "2"))
    assert b.traded_today("s1", T0) == D(6000)


def test_the_feed_reads_raw_records_the_same_as_decoded_events() -> None:
    """``apply_record`` skips decoding an ending (the id is enough) and the plan of an intent
    whose strategy is known; the book it builds equals one fed the decoded events."""
    from pipeline.codec import encode_event
    from pipeline.risk.feed import apply_record

    raw, decoded = book(), book()
    i, j = intent(), intent(strategy="s1")
    events = [
        accepted(i),
        accepted(j),
        filled(i, "USDC", "3000", "WETH", "1"),
        completed(i),
        plan_rejected(j),
    ]
    for event in events:
        assert apply_record(raw, encode_event(event))
        decoded.apply(event)
    assert list(raw.open_intents("s1")) == list(decoded.open_intents("s1")) == []
    assert raw.book("s1") == decoded.book("s1")
    assert raw.book("s1").fills == 1


def _old_expire(open_: dict[str, OpenIntent], now_ms: int, grace_ms: int) -> int:
    """``expire`` as it was: every open intent looked at."""
    closed = 0
    for intent_id, opened in list(open_.items()):
        if opened.deadline_ms is not None and now_ms > opened.deadline_ms + grace_ms:
            del open_[intent_id]
            closed += 1
    return closed


@pytest.mark.parametrize("slack", [4096, 3])
def test_expire_closes_what_a_look_at_every_open_intent_closed(
    slack: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(book_module, "_HEAP_SLACK", slack)  # 3: the heap's rebuild runs too
    rng = random.Random(5)
    b = book()
    reference: dict[str, dict[str, OpenIntent]] = {}
    now = T0
    for n in range(3000):
        roll = rng.random()
        if roll < 0.5:
            strategy = f"s{rng.randrange(3)}"
            deadline = None if rng.random() < 0.1 else now + rng.randrange(-500, 5000)
            opened = OpenIntent(
                f"i{n}", strategy, IntentType.ACQUIRE, "WETH", "USDC", D(1), deadline
            )
            b.accept(opened)
            reference.setdefault(strategy, {})[opened.intent_id] = opened
        elif roll < 0.8:
            ending = f"i{rng.randrange(n + 1)}"
            b.end(ending)
            for open_ in reference.values():
                open_.pop(ending, None)
        else:
            now += rng.randrange(0, 400)
            grace = rng.choice([0, 100, 1000])
            expected = sum(_old_expire(o, now, grace) for o in reference.values())
            assert b.expire(now, grace) == expected
        for strategy, open_ in reference.items():
            assert [o.intent_id for o in b.open_intents(strategy)] == list(open_)


def _old_fill(holdings: dict[str, Holding], quote: str, fill: Fill, value: D) -> None:
    """A fill's trades as ``RiskBook`` made them before: the quote asset traded, then reset."""
    holdings.setdefault(fill.asset_in, Holding()).trade(-fill.amount_in, value)
    holdings.setdefault(fill.asset_out, Holding()).trade(fill.amount_out, value)
    if quote in holdings:
        holdings[quote] = Holding(quantity=holdings[quote].quantity)


def test_fills_hold_what_trading_the_quote_asset_and_resetting_it_held() -> None:
    rng = random.Random(11)
    b = book()
    b.know("i", "s1")
    reference: dict[str, Holding] = {}
    assets = ["USDC", "WETH", "WBTC"]
    for n in range(2000):
        asset_in, asset_out = rng.sample(assets, 2)
        amount = lambda: D(rng.randrange(0, 10**8)).scaleb(-rng.randrange(0, 19))  # noqa: E731
        fill = Fill(f"step-{n}", asset_in, amount(), asset_out, amount(), T0)
        _old_fill(reference, "USDC", fill, b.fill_value(fill))
        b.fill("i", fill)
    held = b.strategies["s1"].holdings
    assert held == reference
    assert {a: str(h.quantity) for a, h in held.items()} == {
        a: str(h.quantity) for a, h in reference.items()
    }
