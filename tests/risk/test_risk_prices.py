"""Marks from pool states: the deepest pool's mid, a bridge for assets with no quote pool,
staleness and the reference fallback, and a quiet feed's venue asked directly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue
from pipeline.risk.prices import Mark, MarketMarks, PriceBoard, Unpriced
from pipeline.stages.base import MarketView
from tests.risk.risk_support import TOPOLOGY

D = Decimal
DECIMALS = {a.symbol: a.decimals for a in TOPOLOGY.assets}


def pool(pid: str, t0: str, r0: str, t1: str, r1: str, venue: str = "sim") -> PoolState:
    return PoolState(
        pool_id=pid,
        venue=venue,
        chain_id=31337,
        token0=t0,
        token1=t1,
        fee=3000,
        reserve0=int(D(r0) * 10 ** DECIMALS[t0]),
        reserve1=int(D(r1) * 10 ** DECIMALS[t1]),
    )


def risk(**kw: object):  # type: ignore[no-untyped-def]
    return TOPOLOGY.risk.model_copy(update={"price_max_age_ms": 1000, **kw})


def test_the_deepest_pool_sets_the_mark_and_a_bridge_prices_the_rest() -> None:
    board = PriceBoard(risk(), DECIMALS)
    board.update(
        "sim",
        [
            pool("thin", "WETH", "1", "USDC", "2000"),
            pool("deep", "WETH", "1000", "USDC", "3000000"),
            pool("btc", "WBTC", "10", "WETH", "200"),
        ],
        100,
    )
    weth = board.mark("WETH", 200)
    assert isinstance(weth, Mark)
    assert (weth.price, weth.source) == (D(3000), "sim/deep")
    wbtc = board.mark("WBTC", 200)
    assert isinstance(wbtc, Mark)
    assert wbtc.price == D(60000)
    assert wbtc.source == "sim/btc via sim/deep"
    assert board.mark("USDC", 200) == Mark(D(1), 200, "quote")


def test_a_stale_mark_is_refused_or_replaced_by_the_reference_price() -> None:
    board = PriceBoard(risk(), DECIMALS)
    board.update("sim", [pool("deep", "WETH", "1000", "USDC", "2500000")], 0)
    stale = board.mark("WETH", 1001)
    assert isinstance(stale, Unpriced)
    assert (stale.rule, stale.limit, stale.actual) == ("stale_price", "1000 ms", "1001 ms")
    assert "sim/deep" in stale.reason
    lenient = PriceBoard(risk(stale_prices="reference"), DECIMALS)
    lenient.update("sim", [pool("deep", "WETH", "1000", "USDC", "2500000")], 0)
    assert lenient.mark("WETH", 5000) == Mark(D(3000), 5000, "reference")


def test_an_asset_no_pool_prices_falls_back_to_its_reference_price_or_is_unpriced() -> None:
    board = PriceBoard(risk(reference_prices={"ARB": D("0.8")}), DECIMALS)
    assert board.mark("ARB", 0) == Mark(D("0.8"), 0, "reference")
    missing = board.mark("DAI", 0)
    assert isinstance(missing, Unpriced)
    assert missing.rule == "unpriced"


@dataclass
class Feed:
    states: dict[str, list[PoolState]] = field(default_factory=dict)

    def pools(self) -> Mapping[str, list[PoolState]]:
        return self.states


class Chain:
    name = "uni"

    def __init__(self, states: list[PoolState]) -> None:
        self.states = states
        self.asked = 0

    async def pools(self) -> list[PoolState]:
        self.asked += 1
        return self.states


@dataclass
class Source:
    venues: dict[str, Venue]
    market: MarketView | None
    market_venues: frozenset[str]


async def test_a_quiet_feed_is_confirmed_by_asking_its_venue() -> None:
    now = [0]
    published = [pool("p", "WETH", "1000", "USDC", "3000000", venue="uni")]
    chain = Chain([pool("p", "WETH", "1000", "USDC", "2900000", venue="uni")])
    source = Source({"uni": chain}, Feed({"uni": published}), frozenset({"uni"}))  # type: ignore[dict-item]
    marks = MarketMarks(risk(price_refresh_ms=0), DECIMALS, source, lambda: now[0])
    await marks.refresh()
    assert chain.asked == 0  # the feed's state is fresh
    mark = marks.mark("WETH")
    assert isinstance(mark, Mark)
    assert mark.price == D(3000)
    now[0] = 600  # older than half the age limit: the venue says what is current
    await marks.refresh()
    assert chain.asked == 1
    mark = marks.mark("WETH")
    assert isinstance(mark, Mark)
    assert (mark.price, mark.at_ms) == (D(2900), 600)
    now[0] = 700  # the venue's read is newer than the feed's state: kept, not asked again
    await marks.refresh()
    assert chain.asked == 1
