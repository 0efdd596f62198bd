"""The RiskBook: open intents, positions, traded notional and P&L from the pipeline's events."""

from __future__ import annotations

from decimal import Decimal

from pipeline.risk.book import DAY_MS, RiskBook
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
