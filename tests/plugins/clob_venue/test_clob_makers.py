"""The makers' reference price and quote ladder, and the unit conversions: pure functions."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from plugins.clob_venue.engine import Side
from plugins.clob_venue.makers import Ladder, Quote, ReferencePath, ladder, refresh_epoch
from plugins.clob_venue.units import exact_units, of_steps, steps, to_units


def test_the_reference_is_a_function_of_time_seed_and_market() -> None:
    path = ReferencePath.of(0, "WETH-USDC", 3000.0, 50.0, 60.0)
    same = ReferencePath.of(0, "WETH-USDC", 3000.0, 50.0, 60.0)
    assert [path.price_at(t) for t in range(0, 600_000, 7_000)] == [
        same.price_at(t) for t in range(0, 600_000, 7_000)
    ]
    assert ReferencePath.of(1, "WETH-USDC", 3000.0, 50.0, 60.0).phases != path.phases
    assert ReferencePath.of(0, "WBTC-USDC", 3000.0, 50.0, 60.0).phases != path.phases
    prices = [path.price_at(t) for t in range(0, 3_600_000, 1000)]
    bound = 3000 * math.exp(0.005)
    assert all(3000 / bound * 3000 <= p <= bound for p in prices)  # within ±50 bps
    assert max(prices) / min(prices) > 1.004  # and it does move
    assert ReferencePath.of(0, "m", 3000.0, 0.0, 60.0).price_at(12_345) == 3000.0


def test_the_ladder_rounds_away_from_the_reference_and_steps_out() -> None:
    spec = Ladder(
        spread_bps=Decimal(10), levels=3, level_qty=4, size_growth=Decimal("0.5"), spacing_ticks=2
    )
    quotes = ladder(3000.0, Decimal("0.01"), spec)
    assert quotes == [
        Quote(Side.BUY, 299_850, 4),
        Quote(Side.SELL, 300_150, 4),
        Quote(Side.BUY, 299_848, 6),
        Quote(Side.SELL, 300_152, 6),
        Quote(Side.BUY, 299_846, 8),
        Quote(Side.SELL, 300_154, 8),
    ]
    # A spread under one tick still leaves one tick between the best bid and ask.
    [bid, ask] = ladder(3000.004, Decimal("1"), Ladder(Decimal("0.01"), 1, 1))
    assert (bid.price, ask.price) == (3000, 3001)
    # Bids that would be at or below zero ticks are left out.
    sides = [q.side for q in ladder(2.0, Decimal(1), Ladder(Decimal(10), 5, 1))]
    assert sides.count(Side.BUY) == 1
    assert sides.count(Side.SELL) == 5


def test_refresh_epochs() -> None:
    assert [refresh_epoch(t, 500) for t in (0, 499.9, 500, 1999)] == [0, 0, 1, 3]


@pytest.mark.parametrize(
    ("amount", "size", "down", "up"),
    [
        ("3000.005", "0.01", 300_000, 300_001),
        ("3000", "0.01", 300_000, 300_000),
        ("0.0015", "0.001", 1, 2),
        ("0.0005", "0.001", 0, 1),
        (
            "123456789012345678901234567890.5",
            "0.5",
            246913578024691357802469135781,
            246913578024691357802469135781,
        ),
    ],
)
def test_tick_and_lot_rounding(amount: str, size: str, down: int, up: int) -> None:
    assert steps(Decimal(amount), Decimal(size)) == down
    assert steps(Decimal(amount), Decimal(size), round_up=True) == up


def test_base_unit_conversions_are_exact() -> None:
    assert to_units(Decimal("1.0000000000000000005"), 18) == 10**18
    assert to_units(Decimal("1.0000000000000000005"), 18, round_up=True) == 10**18 + 1
    assert exact_units(Decimal("0.0001"), 18) == 10**14
    assert exact_units(Decimal("0.0000001"), 6) is None
    assert of_steps(299_999, Decimal("0.01")) == Decimal("2999.99")
