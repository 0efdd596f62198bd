"""Position accounting: Decimal, average cost, shorts, and order of arrival not mattering."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store.positions import Holding, Ledger, holdings_from_fills, ledger_from_fills, valued

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


def random_fills(rng: random.Random, n: int) -> list[dict[str, str]]:
    """``n`` fills between three assets, 0-9 s apart (some within ``SETTLE_AFTER``)."""
    assets = ["USDC", "WETH", "WBTC"]
    out, at = [], datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        a, b = rng.sample(assets, 2)
        at += timedelta(seconds=rng.randint(0, 9))
        out.append(
            {
                "time": at.isoformat(),
                "eventId": f"e{i:04d}",
                "assetIn": a,
                "amountIn": str(Decimal(rng.randint(1, 10**6)) / Decimal(10 ** rng.randint(0, 9))),
                "assetOut": b,
                "amountOut": str(Decimal(rng.randint(1, 10**6)) / Decimal(10 ** rng.randint(0, 9))),
            }
        )
    return out


def one_by_one(fills: list[dict[str, str]], quote: str) -> dict[str, Holding]:
    """The definition: every fill traded in (time, event id) order, the quote asset cash."""
    out: dict[str, Holding] = {}
    for f in sorted(fills, key=lambda f: (f["time"], f["eventId"])):
        value = Decimal(f["amountOut"] if f["assetOut"] == quote else f["amountIn"])
        if quote not in (f["assetIn"], f["assetOut"]):
            value = Decimal(f["amountIn"]) * REF[f["assetIn"]]
        out.setdefault(f["assetIn"], Holding()).trade(-Decimal(f["amountIn"]), value)
        out.setdefault(f["assetOut"], Holding()).trade(Decimal(f["amountOut"]), value)
    if quote in out:
        out[quote] = Holding(quantity=out[quote].quantity)
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(1, 40),
    st.lists(st.integers(1, 40), max_size=6),
    st.integers(0, 3),
)
def test_folding_in_pieces_gives_what_all_fills_give(
    seed: int, n: int, cuts: list[int], lateness: int
) -> None:
    """Fills taken in a few at a time, some pieces arriving late (while their fills are still
    recent), through a ledger stored and loaded between pieces, end on the same holdings, to
    the digit, as every fill traded in order; a piece arriving too late is refused."""
    rng = random.Random(seed)
    fills = random_fills(rng, n)
    bounds = [0, *sorted({c for c in cuts if c < n}), n]
    pieces = [fills[a:b] for a, b in itertools.pairwise(bounds)]
    for i in range(len(pieces) - 1, 0, -1):  # some pieces swap places with the next one
        if rng.randint(0, 3) < lateness:
            pieces[i - 1], pieces[i] = pieces[i], pieces[i - 1]
    ledger, taken = Ledger(), []
    for piece in pieces:
        rng.shuffle(piece)  # arrival order within a piece does not matter
        before = ledger.dumps()
        if ledger.fold(piece, "USDC", REF):
            taken += piece
        else:  # too late: the caller computes from all fills instead
            assert ledger.dumps() == before
            assert min((f["time"], f["eventId"]) for f in piece) <= (ledger.watermark or ("",))
            taken += piece
            ledger = ledger_from_fills(taken, "USDC", REF)
        ledger = Ledger.loads(ledger.dumps())
        assert ledger.positions("USDC") == one_by_one(taken, "USDC")
    assert holdings_from_fills(fills, "USDC", REF) == one_by_one(fills, "USDC")


def test_a_fill_before_the_watermark_is_refused_and_changes_nothing() -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    at = [(t + timedelta(seconds=s)).isoformat() for s in (0, 10, 20, 21)]
    settled = fill(1, "USDC", "3000", "WETH", "1") | {"time": at[0]}
    recent = fill(2, "WETH", "1", "USDC", "3100") | {"time": at[2]}
    ledger = ledger_from_fills([settled, recent], "USDC", REF)
    assert ledger.watermark == (at[0], "e1")  # 20 s before the newest: settled
    assert [f["eventId"] for f in ledger.recent] == ["e2"]
    before = ledger.dumps()
    # 10 s: before the watermark? no, but after it and before a recent fill: taken in.
    between = fill(3, "USDC", "2900", "WETH", "1") | {"time": at[1]}
    too_late = fill(4, "USDC", "2800", "WETH", "1") | {"time": at[0], "eventId": "e0"}
    assert not ledger.fold([between, too_late], "USDC", REF)
    assert ledger.dumps() == before
    assert ledger.fold([between], "USDC", REF)
    assert ledger.positions("USDC") == one_by_one([settled, recent, between], "USDC")
    assert ledger.watermark == (at[1], "e3")  # 10 s before the newest now
    assert not ledger.fold([settled], "USDC", REF)  # the watermark itself: already in


def test_the_ledger_is_stored_exactly() -> None:
    h = Holding(Decimal("0.1234567890123456789012345"), Decimal("-3.3333333333333333333333333"))
    ledger = Ledger({"WETH": h}, ("2024-01-01T00:00:01+00:00", "e1"), [], {"WETH": h})
    again = Ledger.loads(ledger.dumps())
    assert again == ledger
    assert again.current["WETH"].cost == Decimal("-3.3333333333333333333333333")
