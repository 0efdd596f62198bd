"""Position accounting: Decimal, average cost, shorts, and order of arrival not mattering."""

from __future__ import annotations

from decimal import Decimal

from pipeline.store.positions import Holding, holdings_from_fills, valued

REF = {"WETH": Decimal(3000), "USDC": Decimal(1), "WBTC": Decimal(60000)}


def fill(n: int, asset_in: str, amount_in: str, asset_out: str, amount_out: str) -> dict[str, str]:
    return {
        "time": f"2024-01-01T00:00:{n:02d}+00:00",
        "eventId": f"e{n}",
        "assetIn": asset_in,
        "amountIn": amount_in,
        "assetOut": asset_out,
        "amountOut": amount_out,
    }


def test_average_cost_and_realised_pnl() -> None:
    fills = [
        fill(1, "USDC", "3000", "WETH", "1"),
        fill(2, "USDC", "3300", "WETH", "1"),
        fill(3, "WETH", "1", "USDC", "3500"),
    ]
    got = holdings_from_fills(reversed(fills), "USDC", REF)  # arrival order does not matter
    weth = got["WETH"]
    assert (weth.quantity, weth.cost, weth.realised) == (1, 3150, 350)
    assert got["USDC"] == Holding(quantity=Decimal(-2800))


def test_short_then_flip_long() -> None:
    h = Holding()
    h.trade(Decimal(-1), Decimal(3000))  # sell 1 at 3000
    h.trade(Decimal(3), Decimal(8700))  # buy 3 at 2900: close the short (+100), open 2 long
    assert (h.quantity, h.cost, h.realised) == (2, 5800, 100)


def test_cross_pair_is_valued_at_the_reference_price() -> None:
    got = holdings_from_fills([fill(1, "WBTC", "0.1", "WETH", "2")], "USDC", REF)
    assert got["WETH"].cost == 6000  # 0.1 WBTC x 60000
    assert got["WBTC"].cost == -6000


def test_unrealised_against_the_latest_price() -> None:
    stored = Holding(Decimal(2), Decimal(6000)).to_wire()
    out = valued(stored, "WETH", "USDC", Decimal("3100.5"))
    assert (out["marketValue"], out["unrealisedPnl"]) == ("6201", "201")
    assert valued(stored, "WETH", "USDC", None)["unrealisedPnl"] is None
