"""Each exposure check refuses with its rule and the numbers, and lets through what it should."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.plugins.risk import RiskBreach
from pipeline.risk.book import OpenIntent
from pipeline.risk.breakers import RiskState
from pipeline.risk.checks import StrategyView, exposure_breaches, reduces
from pipeline.topology.models import StrategyLimits
from tests.risk.risk_support import intent

D = Decimal
PRICES = {"USDC": D(1), "WETH": D(3000), "WBTC": D(60000)}


def price(asset: str) -> Decimal | None:
    return PRICES.get(asset)


def view(
    positions: dict[str, Decimal] | None = None,
    open: list[OpenIntent] | None = None,
    **kw: object,
) -> StrategyView:
    rest: dict[str, object] = {"traded_today": D(0), "equity": None, **kw}
    return StrategyView.of("s1", positions or {}, open or [], price, "USDC", **rest)


def breaches(i: object, limits: StrategyLimits, v: StrategyView) -> dict[str, RiskBreach]:
    return {b.rule: b for b in exposure_breaches(i, limits, v, price, "USDC")}  # type: ignore[arg-type]


def test_max_position_counts_holdings_and_open_intents() -> None:
    limits = StrategyLimits(max_position=D(10_000))
    opened = OpenIntent.of(intent(amount="1"))
    found = breaches(intent(amount="1"), limits, view(positions={"WETH": D(1.5)}, open=[opened]))
    b = found["max_position"]
    assert (b.limit, b.actual) == ("10000.00", "10500.00")  # 3.5 WETH at 3000
    assert "WETH position would be 3.5 WETH = 10500.00 USDC" in b.message
    assert breaches(intent(amount="1"), limits, view(positions={"WETH": D(1.5)})) == {}


def test_a_position_rule_never_refuses_what_shrinks_the_position() -> None:
    limits = StrategyLimits(max_position=D(1000))
    found = breaches(intent("DISPOSE", amount="1"), limits, view(positions={"WETH": D(5)}))
    assert "max_position" not in found


def test_max_concentration_is_a_share_of_equity() -> None:
    limits = StrategyLimits(capital=D(100_000), max_concentration=D("0.25"))
    b = breaches(intent(amount="10"), limits, view(equity=D(100_000)))["max_concentration"]
    assert (b.limit, b.actual) == ("0.25", "0.300000")
    assert "30.00% of its equity 100000.00 USDC; the limit is 25.00%" in b.message
    assert not breaches(intent(amount="8"), limits, view(equity=D(100_000)))


def test_no_equity_left_refuses_every_increase() -> None:
    limits = StrategyLimits(capital=D(1), max_concentration=D("0.5"))
    b = breaches(intent(amount="0.001"), limits, view(equity=D(-5)))["max_concentration"]
    assert b.actual == "inf"


def test_max_open_intents_counts_this_one() -> None:
    limits = StrategyLimits(max_open_intents=2)
    opened = [OpenIntent.of(intent()), OpenIntent.of(intent())]
    b = breaches(intent(amount="0.1"), limits, view(open=opened))["max_open_intents"]
    assert (b.limit, b.actual) == ("2", "3")
    assert "s1 would have 3 open intents, the limit is 2" in b.message
    assert not breaches(intent(amount="0.1"), limits, view(open=opened[:1]))


def test_max_daily_notional_adds_traded_open_and_this_intent() -> None:
    limits = StrategyLimits(max_daily_notional=D(20_000))
    opened = [OpenIntent.of(intent(amount="2"))]  # 6,000 open
    b = breaches(intent(amount="1"), limits, view(open=opened, traded_today=D(12_000)))
    found = b["max_daily_notional"]
    assert (found.limit, found.actual) == ("20000.00", "21000.00")
    assert "traded 12000.00 USDC today, 6000.00 more is open and this intent adds 3000.00" in (
        found.message
    )


def test_reducing_passes_only_what_reduces_exposure() -> None:
    reducing = view(positions={"WETH": D(2)}, state=RiskState.REDUCING, state_why="loss 5,000")
    limits = StrategyLimits()
    assert breaches(intent("DISPOSE", amount="1"), limits, reducing) == {}
    up = breaches(intent("ACQUIRE", amount="1"), limits, reducing)["risk_state"]
    assert up.actual == "increases exposure"
    assert (
        "loss 5,000: only exposure-reducing intents pass; this one moves WETH 2 -> 3" in up.message
    )
    flip = breaches(intent("DISPOSE", amount="3"), limits, reducing)["risk_state"]
    assert "WETH 2 -> -1" in flip.message  # a sale that flips the long into a short


def test_halted_refuses_even_a_reduction() -> None:
    halted = view(positions={"WETH": D(2)}, state=RiskState.HALTED, state_why="loss 9,000")
    b = breaches(intent("DISPOSE", amount="1"), StrategyLimits(), halted)["risk_state"]
    assert (b.limit, b.actual) == ("NORMAL or REDUCING", "HALTED")


@pytest.mark.parametrize(
    ("before", "deltas", "expected"),
    [
        ({"WETH": D(2)}, {"WETH": D(-1)}, True),
        ({"WETH": D(2)}, {"WETH": D(-2)}, True),
        ({"WETH": D(2)}, {"WETH": D(-3)}, False),  # flips short
        ({"WETH": D(-2)}, {"WETH": D(1)}, True),  # buys back a short
        ({}, {"WETH": D(-1)}, False),  # opens a short
        ({"WBTC": D(1), "WETH": D(0)}, {"WBTC": D(-0.5), "WETH": D(10)}, False),  # a swap into WETH
    ],
)
def test_reduces(before: dict[str, Decimal], deltas: dict[str, Decimal], expected: bool) -> None:
    assert reduces(before, deltas) is expected


def test_a_view_moved_on_by_an_approval_equals_one_built_with_it() -> None:
    held = {"WETH": D(1), "USDC": D(-3000)}
    first, second = OpenIntent.of(intent(amount="2")), OpenIntent.of(intent("DISPOSE", amount="1"))
    moved = view(held, [first]).with_intent(second, price, "USDC")
    assert moved == view(held, [first, second])
    assert (moved.open_count, moved.open_notional, moved.projected) == (2, D(9000), {"WETH": D(2)})
