"""SimVenue through the Venue protocol: quotes, fills, slippage, idempotence, latency, restarts."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from pipeline.models import ExecutionStep, SwapMode
from pipeline.plugins.venue import (
    StepRejected,
    Submission,
    TransientVenueError,
    Venue,
    VenueContext,
)
from plugins.sim_venue import SimVenue, SimVenueConfig

OpenVenue = Callable[..., Awaitable[SimVenue]]
StepFactory = Callable[..., ExecutionStep]
WETH_DAI = "WETH>weth-usdc>USDC>dai-usdc>DAI"
E18 = 10**18


async def reserves(venue: SimVenue) -> dict[str, tuple[int, int]]:
    return {p.pool_id: (p.reserve0, p.reserve1) for p in await venue.pools()}


async def test_pools_are_the_configured_ones_in_base_units(open_venue: OpenVenue) -> None:
    venue = await open_venue()
    assert isinstance(venue, Venue)
    [weth_usdc, dai_usdc] = await venue.pools()
    assert weth_usdc.model_dump(exclude_none=True) == {  # V3-only fields are None here
        "pool_id": "weth-usdc",
        "venue": "sim",
        "kind": "constant_product",
        "chain_id": 1,
        "token0": "WETH",
        "token1": "USDC",
        "reserve0": 1_000 * E18,
        "reserve1": 3_000_000 * 10**6,
        "fee": 3000,
        "seq": 0,  # no fill has moved it
    }
    assert (dai_usdc.reserve0, dai_usdc.reserve1, dai_usdc.fee) == (5 * 10**24, 5 * 10**12, 100)


async def test_exact_in_fill_equals_the_quote(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    venue = await open_venue()
    step = make_step(WETH_DAI, "2")
    before = await reserves(venue)
    quoted = await venue.quote(step)
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=5)
    assert (fill.step_id, fill.amount_in, fill.amount_out) == ("step-1", Decimal(2), quoted)
    # The fill says where it landed; both pools it moved now carry that version.
    assert fill.landed_at == 1
    assert {p.pool_id: p.version for p in await venue.pools()} == {"weth-usdc": 1, "dai-usdc": 1}
    assert Decimal(5900) < quoted < Decimal(6000)  # 2 WETH at ~3000 USDC, less fees and impact
    after = await reserves(venue)
    assert after["weth-usdc"][0] == before["weth-usdc"][0] + 2 * E18
    assert after["dai-usdc"][0] == before["dai-usdc"][0] - int(quoted * E18)
    # The USDC leg passes through: what left weth-usdc entered dai-usdc.
    usdc_moved = before["weth-usdc"][1] - after["weth-usdc"][1]
    assert after["dai-usdc"][1] == before["dai-usdc"][1] + usdc_moved
    assert await venue.quote(step) < quoted  # the trade moved the price against the next one


async def test_exact_out_fill_equals_the_quote(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    venue = await open_venue()
    step = make_step("WETH>weth-usdc>USDC", "3000", mode=SwapMode.EXACT_OUT, limit="1.1")
    quoted = await venue.quote(step)
    assert Decimal(1) < quoted < Decimal("1.1")
    fill = await venue.wait_receipt(await venue.submit(step), timeout_s=5)
    assert (fill.amount_in, fill.amount_out) == (quoted, Decimal(3000))


@pytest.mark.parametrize("mode", [SwapMode.EXACT_IN, SwapMode.EXACT_OUT])
async def test_slippage_by_one_base_unit_fails_the_step_and_leaves_reserves_unchanged(
    open_venue: OpenVenue, make_step: StepFactory, mode: SwapMode
) -> None:
    venue = await open_venue()
    step = make_step(
        "WETH>weth-usdc>USDC", "3000" if mode is SwapMode.EXACT_OUT else "1", mode=mode
    )
    quoted = await venue.quote(step)
    if mode is SwapMode.EXACT_IN:  # ask for one USDC base unit more than the pool pays
        step = step.model_copy(update={"min_out": quoted + Decimal("1e-6")})
    else:  # allow one WETH base unit less than the pool needs
        step = step.model_copy(update={"max_in": quoted - Decimal("1e-18")})
    before = await reserves(venue)
    submission = await venue.submit(step)
    for _ in range(2):  # the failure is recorded: asking again gives the same answer
        with pytest.raises(StepRejected) as caught:
            await venue.wait_receipt(submission, timeout_s=5)
        assert (caught.value.venue, caught.value.reason) == ("sim", "slippage")
    assert await reserves(venue) == before
    assert venue.total_fills() == 0
    # At the limit itself the step fills.
    field = "min_out" if mode is SwapMode.EXACT_IN else "max_in"
    exact = step.model_copy(update={field: quoted, "step_id": "step-2"})
    fill = await venue.wait_receipt(await venue.submit(exact), timeout_s=5)
    assert quoted in (fill.amount_in, fill.amount_out)
    assert venue.fill_counts() == {"step-2": 1}


async def test_wait_receipt_is_idempotent(open_venue: OpenVenue, make_step: StepFactory) -> None:
    venue = await open_venue()
    submission = await venue.submit(make_step("USDC>weth-usdc>WETH", "1000"))
    first = await venue.wait_receipt(submission, timeout_s=5)
    after_first = await reserves(venue)
    second = await venue.wait_receipt(submission, timeout_s=5)
    assert second == first
    assert venue.fill_counts() == {"step-1": 1}
    assert await reserves(venue) == after_first


async def test_lookup_after_a_restart_finds_the_submission(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    venue = await open_venue()
    assert await venue.lookup("step-1") is None
    submission = await venue.submit(make_step("USDC>weth-usdc>WETH", "1000"))
    await venue.stop()

    restarted = await open_venue()
    assert await restarted.lookup("step-1") == submission
    fill = await restarted.wait_receipt(submission, timeout_s=5)
    assert fill.order_ref == submission.order_ref
    assert submission.order_ref.startswith("sim-")
    assert len(submission.order_ref) == 30


async def test_a_restarted_venue_keeps_the_traded_reserves(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    venue = await open_venue()
    await venue.wait_receipt(await venue.submit(make_step("WETH>weth-usdc>USDC", "5")), 5)
    traded = await reserves(venue)
    await venue.stop()
    assert await reserves(await open_venue()) == traded


async def test_the_same_step_submitted_twice_fills_twice(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    """The venue does not deduplicate: that is how a double execution shows up."""
    venue = await open_venue()
    step = make_step("WETH>weth-usdc>USDC", "10")
    first, second = await venue.submit(step), await venue.submit(step)
    assert first.order_ref != second.order_ref
    fill_1 = await venue.wait_receipt(first, 5)
    fill_2 = await venue.wait_receipt(second, 5)
    assert fill_2.amount_out < fill_1.amount_out
    assert venue.fill_counts() == {"step-1": 2}
    assert venue.total_fills() == 2
    assert await venue.lookup("step-1") == first


async def test_due_submissions_execute_in_submission_order(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    """Waiting on a later submission also settles an earlier one, as a block would."""
    venue = await open_venue()
    early = await venue.submit(make_step("WETH>weth-usdc>USDC", "10", step_id="early"))
    late = await venue.submit(make_step("WETH>weth-usdc>USDC", "10", step_id="late"))
    late_fill = await venue.wait_receipt(late, 5)
    assert venue.fill_counts() == {"early": 1, "late": 1}
    early_fill = await venue.wait_receipt(early, 5)
    assert early_fill.amount_out > late_fill.amount_out


async def test_without_latency_a_submission_is_final_once_stored_and_fills_once(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    """Latency 0 on the wall clock: the transaction that stores a tick's submissions runs
    them.  The fill is durable when ``submit`` returns: a restarted venue reports it and never
    runs the step again."""
    venue = await open_venue()
    submission = await venue.submit(make_step("WETH>weth-usdc>USDC", "1"))
    record = venue.ledger.submission(submission.order_ref)
    assert record is not None
    assert (record.status, record.fill_seq) == ("filled", 1)
    fill = await venue.wait_receipt(submission, timeout_s=5)
    traded = await reserves(venue)
    await venue.stop()

    restarted = await open_venue()
    assert await restarted.lookup("step-1") == submission
    assert await restarted.wait_receipt(submission, timeout_s=5) == fill
    assert restarted.fill_counts() == {"step-1": 1}
    assert await reserves(restarted) == traded


async def test_with_latency_a_submission_waits_pending(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    venue = await open_venue(latency_ms=50)
    submission = await venue.submit(make_step("WETH>weth-usdc>USDC", "1"))
    record = venue.ledger.submission(submission.order_ref)
    assert record is not None
    assert record.status == "pending"
    await venue.wait_receipt(submission, timeout_s=5)
    assert venue.fill_counts() == {"step-1": 1}


async def test_latency_is_honoured(open_venue: OpenVenue, make_step: StepFactory) -> None:
    venue = await open_venue(latency_ms=150)
    started = time.time()
    submission = await venue.submit(make_step("WETH>weth-usdc>USDC", "1"))
    await venue.wait_receipt(submission, timeout_s=5)
    assert time.time() - started >= 0.150
    [fill] = venue.ledger.fills()
    record = venue.ledger.submission(submission.order_ref)
    assert record is not None
    assert fill.filled_ms - record.submitted_ms >= 150


async def test_latency_counts_from_the_submission_not_the_wait(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    now = [1_000_000.0]
    venue = await open_venue(latency_ms=10_000, clock_ms=lambda: now[0])
    submission = await venue.submit(make_step("WETH>weth-usdc>USDC", "1"))
    # The clock stands still, so the receipt cannot be due within the timeout.
    with pytest.raises(TransientVenueError) as caught:
        await venue.wait_receipt(submission, timeout_s=0.05)
    assert caught.value.reason == "receipt_timeout"
    assert venue.total_fills() == 0
    await venue.stop()

    now[0] += 10_000  # the latency has passed while the venue was down
    restarted = await open_venue(latency_ms=10_000, clock_ms=lambda: now[0])
    # Waiting again from scratch would time out on the frozen clock; it is due already.
    fill = await restarted.wait_receipt(submission, timeout_s=0.05)
    assert fill.amount_in == Decimal(1)


@pytest.mark.parametrize(
    ("path", "kwargs", "reason"),
    [
        ("WETH>nope>USDC", {}, "unknown_pool"),
        ("WETH>weth-usdc>USDC", {"venue": "uniswap_v3"}, "wrong_venue"),
        ("WETH>weth-usdc>DAI", {}, "bad_route"),
        ("ARB>weth-usdc>USDC", {}, "bad_route"),
        ("XYZ>weth-usdc>USDC", {}, "unknown_asset"),
    ],
)
async def test_bad_steps_are_rejected_by_quote_and_submit(
    open_venue: OpenVenue, make_step: StepFactory, path: str, kwargs: dict[str, str], reason: str
) -> None:
    venue = await open_venue()
    step = make_step(path, "1", **kwargs)
    for call in (venue.quote, venue.submit):
        with pytest.raises(StepRejected) as caught:
            await call(step)
        assert caught.value.reason == reason
    assert await venue.lookup("step-1") is None


async def test_zero_amount_and_unknown_order_are_rejected(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    venue = await open_venue()
    with pytest.raises(StepRejected) as caught:
        await venue.submit(make_step("WETH>weth-usdc>USDC", "0.0000000000000000001"))
    assert caught.value.reason == "zero_amount"
    with pytest.raises(StepRejected) as caught:
        await venue.wait_receipt(Submission("step-1", "sim-unknown"), timeout_s=1)
    assert caught.value.reason == "unknown_order"


async def test_a_venue_that_is_not_started_says_so(
    make_config: Callable[..., SimVenueConfig], context: VenueContext
) -> None:
    venue = SimVenue(make_config(), context)
    with pytest.raises(RuntimeError, match="not started"):
        await venue.pools()


async def test_a_write_lock_held_by_another_process_does_not_stop_the_event_loop(
    open_venue: OpenVenue, make_step: StepFactory
) -> None:
    """Another worker's transaction holds the ledger: submit waits for it asynchronously
    (SQLite's busy handler used to sleep in the event loop's thread, stalling every stage)."""
    import asyncio
    import sqlite3

    venue = await open_venue()
    other = sqlite3.connect(venue.ledger.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the other worker's write lock
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticking = asyncio.create_task(tick())
    submitting = asyncio.create_task(venue.submit(make_step("WETH>weth-usdc>USDC", "1")))
    await asyncio.sleep(0.3)
    assert not submitting.done()  # still waiting for the lock...
    assert ticks >= 20  # ...while the loop ran on
    other.execute("ROLLBACK")
    other.close()
    submission = await asyncio.wait_for(submitting, 5)
    ticking.cancel()
    assert (await venue.wait_receipt(submission, 5)).amount_out > 0


async def test_injected_failures_revert_the_configured_submissions_only(
    context: VenueContext, make_step: StepFactory
) -> None:
    """``inject_failures``: submissions 2 and 3 (ledger order) fail with the configured
    reason, after being accepted, in every process on the ledger; 1 and 4 fill."""
    config = SimVenueConfig.model_validate(
        {
            "pools": [
                {
                    "pool_id": "weth-usdc",
                    "token0": "WETH",
                    "token1": "USDC",
                    "reserve0": "1000",
                    "reserve1": "3000000",
                    "fee": 3000,
                }
            ],
            "inject_failures": {"first": 2, "after": 1, "reason": "unavailable"},
        },
        context={"assets": dict(context.assets)},
    )
    one, other = SimVenue(config, context), SimVenue(config, context)
    await one.start()
    await other.start()
    try:
        outcomes = []
        for k, venue in enumerate((one, other, one, other), start=1):
            submission = await venue.submit(
                make_step("USDC>weth-usdc>WETH", "100", step_id=f"s{k}")
            )
            try:
                await venue.wait_receipt(submission, timeout_s=5)
                outcomes.append("filled")
            except StepRejected as exc:
                outcomes.append(f"{exc.reason} ({exc.detail[:28]})")
        injected = "unavailable (injected failure: submission)"
        assert outcomes == ["filled", injected, injected, "filled"]
        assert one.fill_counts() == {"s1": 1, "s4": 1}
    finally:
        await one.stop()
        await other.stop()
