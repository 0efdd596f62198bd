"""Paper twins (``plugins.sim_venue.paper``): a live venue's name, pools from its market data,
the sim fill model, our fills standing until the pool's next market state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.models.assets import Asset
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionStep, SwapMode
from pipeline.ops import amount_in as cp_amount_in
from pipeline.plugins.venue import PaperTwin, StepRejected, Venue, VenueContext
from plugins.sim_venue import PaperTwinVenue, make_paper_twin

StepFactory = Callable[..., ExecutionStep]
NAME = "uniswap_v3"
WETH, USDC = 10**18, 10**6


class _Live:
    """Stands for the live venue: a twin only keeps it for the market publisher and stops
    it with itself (the uniswap venue's read-only start is tested in its own module)."""

    name = NAME
    stopped = False

    async def stop(self) -> None:
        self.stopped = True


def state(reserve_weth: int, reserve_usdc: int, pool: str = "uni-weth-usdc-5") -> PoolState:
    return PoolState(
        pool_id=pool,
        venue=NAME,
        kind="concentrated",
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=reserve_weth,
        reserve1=reserve_usdc,
        fee=500,
        block=7,
    )


@pytest.fixture
async def open_twin(
    tmp_path: Path, assets: dict[str, Asset]
) -> AsyncIterator[Callable[[], Awaitable[PaperTwinVenue]]]:
    """``await open_twin()``: a started twin; several calls are several workers on one ledger."""
    opened: list[PaperTwinVenue] = []
    context = VenueContext(data_dir=tmp_path / "venues" / NAME, assets=assets, read_only=True)

    async def _open() -> PaperTwinVenue:
        twin = make_paper_twin(NAME, _Live(), context)  # type: ignore[arg-type]
        await twin.start()
        opened.append(twin)
        return twin

    yield _open
    for twin in opened:
        await twin.stop()


async def test_a_twin_is_a_venue_named_after_the_live_one_with_the_markets_pools(
    open_twin: Callable[[], Awaitable[PaperTwinVenue]],
) -> None:
    twin = await open_twin()
    assert isinstance(twin, Venue)
    assert isinstance(twin, PaperTwin)
    assert twin.name == NAME
    assert await twin.pools() == []  # nothing until the market shows a pool
    assert await twin.set_market([(state(1_000 * WETH, 3_000_000 * USDC), 5)]) == 1
    (pool,) = await twin.pools()
    assert (pool.venue, pool.pool_id, pool.fee) == (NAME, "uni-weth-usdc-5", 500)
    assert (pool.reserve0, pool.reserve1) == (1_000 * WETH, 3_000_000 * USDC)
    assert pool.kind == "constant_product"  # what the twin fills with


async def test_a_fill_prices_at_the_market_state_with_the_pools_fee(
    open_twin: Callable[[], Awaitable[PaperTwinVenue]], make_step: StepFactory
) -> None:
    twin = await open_twin()
    await twin.set_market([(state(1_000 * WETH, 3_000_000 * USDC), 5)])
    step = make_step(
        "USDC>uni-weth-usdc-5>WETH", "1", mode=SwapMode.EXACT_OUT, venue=NAME, step_id="buy"
    )
    fill = await twin.wait_receipt(await twin.submit(step), 5)
    paid = cp_amount_in(3_000_000 * USDC, 1_000 * WETH, WETH, 500)
    assert fill.amount_out == Decimal(1)
    assert fill.amount_in == Decimal(paid) / USDC
    assert Decimal("3001.5") < fill.amount_in < Decimal("3005")  # 3000 + 0.05 % fee + impact


async def test_our_fill_stands_until_the_pools_next_market_state(
    open_twin: Callable[[], Awaitable[PaperTwinVenue]], make_step: StepFactory
) -> None:
    twin = await open_twin()
    await twin.set_market([(state(1_000 * WETH, 3_000_000 * USDC), 5)])
    step = make_step("WETH>uni-weth-usdc-5>USDC", "10", venue=NAME, step_id="sell")
    await twin.wait_receipt(await twin.submit(step), 5)
    (moved,) = await twin.pools()
    assert moved.reserve0 == 1_010 * WETH  # our sale is in the pool...
    # ...a second worker handing over the same state (same offset) does not undo it...
    assert await twin.set_market([(state(1_000 * WETH, 3_000_000 * USDC), 5)]) == 0
    assert (await twin.pools())[0].reserve0 == 1_010 * WETH
    # ...nor does an older state arriving late; the next market state replaces it.
    assert await twin.set_market([(state(990 * WETH, 3_030_000 * USDC), 4)]) == 0
    assert (await twin.pools())[0].reserve0 == 1_010 * WETH
    assert await twin.set_market([(state(995 * WETH, 3_015_000 * USDC), 6)]) == 1
    after = (await twin.pools())[0]
    assert (after.reserve0, after.seq) == (995 * WETH, moved.seq)  # seq: our fills counted


async def test_workers_share_the_twins_pools_through_the_ledger(
    open_twin: Callable[[], Awaitable[PaperTwinVenue]], make_step: StepFactory
) -> None:
    mirroring, executing = await open_twin(), await open_twin()
    await mirroring.set_market([(state(1_000 * WETH, 3_000_000 * USDC), 1)])
    # The executing worker's twin never saw the state itself: the pool joined in the ledger.
    step = make_step("WETH>uni-weth-usdc-5>USDC", "1", venue=NAME, step_id="s")
    fill = await executing.wait_receipt(await executing.submit(step), 5)
    assert fill.amount_out > 0


async def test_an_unknown_pool_or_another_venues_step_is_refused(
    open_twin: Callable[[], Awaitable[PaperTwinVenue]], make_step: StepFactory
) -> None:
    twin = await open_twin()
    await twin.set_market([(state(1_000 * WETH, 3_000_000 * USDC), 1)])
    with pytest.raises(StepRejected) as unknown:
        await twin.submit(make_step("WETH>nope>USDC", "1", venue=NAME))
    assert unknown.value.reason == "unknown_pool"
    with pytest.raises(StepRejected) as wrong:
        await twin.submit(make_step("WETH>uni-weth-usdc-5>USDC", "1", venue="sim"))
    assert wrong.value.reason == "wrong_venue"


async def test_a_pool_with_no_liquidity_in_range_is_not_taken(
    open_twin: Callable[[], Awaitable[PaperTwinVenue]],
) -> None:
    twin = await open_twin()
    assert await twin.set_market([(state(0, 0), 1)]) == 0
    assert await twin.pools() == []


async def test_stopping_the_twin_stops_its_live_venue(
    tmp_path: Path, assets: dict[str, Asset]
) -> None:
    live = _Live()
    context = VenueContext(data_dir=tmp_path, assets=assets, read_only=True)
    twin = make_paper_twin(NAME, live, context)  # type: ignore[arg-type]
    await twin.start()
    await twin.stop()
    assert live.stopped
