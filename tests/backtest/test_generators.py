"""Seeded pool histories: the same seed the same path, liquidity kept, and each model's
shape (regimes switch volatility, gaps go silent and jump, pump-then-dump peaks and falls)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from pipeline.backtest.generators import MODELS, GeneratorConfig, at_price, generate
from pipeline.models.market import PoolState

WETH_USDC = PoolState(
    pool_id="p5", venue="sim", chain_id=1, token0="WETH", token1="USDC",
    reserve0=1_000 * 10**18, reserve1=3_000_000 * 10**6, fee=500,
)  # fmt: skip
TWIN = WETH_USDC.model_copy(
    update={"pool_id": "p30", "fee": 3000, "reserve0": 10**20, "reserve1": 3 * 10**11}
)
WBTC_USDC = WETH_USDC.model_copy(update={"pool_id": "b", "token0": "WBTC", "reserve0": 10**10})


def prices(config: GeneratorConfig, pools: list[PoolState], pool_id: str = "p5") -> list[Decimal]:
    out = []
    for event in generate(config, pools):
        state = PoolState.model_validate_json(event.value)
        if state.pool_id == pool_id:
            out.append(Decimal(state.reserve1) / Decimal(state.reserve0))
    return out


@pytest.mark.parametrize("model", MODELS)
def test_the_same_seed_gives_the_same_events_and_another_seed_others(model: str) -> None:
    config = GeneratorConfig(model=model, seed=4, steps=300, pump_at=100)  # type: ignore[arg-type]
    first = list(generate(config, [WETH_USDC]))
    assert first == list(generate(config, [WETH_USDC]))
    other = GeneratorConfig(model=model, seed=5, steps=300, pump_at=100)  # type: ignore[arg-type]
    assert first != list(generate(other, [WETH_USDC]))
    times = [e.at_ms for e in first]
    assert times == sorted(times)
    assert times[0] == config.start_ms


def test_pools_of_a_pair_move_together_at_their_own_liquidity() -> None:
    config = GeneratorConfig(seed=1, steps=50)
    states = [PoolState.model_validate_json(e.value) for e in generate(config, [WETH_USDC, TWIN])]
    by_step = [states[i : i + 2] for i in range(0, len(states), 2)]
    for p30, p5 in by_step:  # pool id order
        assert (p30.pool_id, p5.pool_id) == ("p30", "p5")
        # Same price (to rounding of integer reserves), each its own k.
        ratio = (Decimal(p5.reserve1) / p5.reserve0) / (Decimal(p30.reserve1) / p30.reserve0)
        assert abs(ratio - 1) < Decimal("1e-9")
        k = Decimal(p5.reserve0) * p5.reserve1
        assert abs(k / (Decimal(WETH_USDC.reserve0) * WETH_USDC.reserve1) - 1) < Decimal("1e-9")


def test_adding_a_pair_does_not_change_another_pairs_path() -> None:
    config = GeneratorConfig(seed=9, steps=100)
    assert prices(config, [WETH_USDC]) == prices(config, [WETH_USDC, WBTC_USDC])


def test_regimes_switch_between_calm_and_volatile() -> None:
    config = GeneratorConfig(model="regimes", seed=2, steps=5000, switch_p=Decimal("0.02"))
    path = prices(config, [WETH_USDC])
    moves = [abs(b / a - 1) for a, b in itertools.pairwise(path)]
    windows = [sum(moves[i : i + 100], Decimal(0)) / 100 for i in range(0, len(moves) - 100, 100)]
    # Calm windows (vol 0.001) and volatile ones (0.004): the spread of window volatility
    # is far wider than one regime's sampling noise.
    assert max(windows) > Decimal("2.5") * min(windows)


def test_gaps_leave_silent_stretches_and_jump_across_them() -> None:
    config = GeneratorConfig(model="gaps", seed=3, steps=3000, gap_p=Decimal("0.01"), gap_steps=40)
    times = sorted({e.at_ms for e in generate(config, [WETH_USDC])})
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a > config.step_ms]
    assert gaps
    assert all(g == 41 * config.step_ms for g in gaps)
    assert len(times) < config.steps


def test_pump_then_dump_peaks_after_the_pump_and_ends_far_below_the_top() -> None:
    config = GeneratorConfig(model="pump_dump", seed=5, steps=400, pump_at=100, pump_steps=50,
                             dump_steps=20, vol=Decimal("0.0005"))  # fmt: skip
    path = prices(config, [WETH_USDC])
    top = max(range(len(path)), key=path.__getitem__)
    assert 140 <= top <= 160
    assert path[top] / path[100] > Decimal("1.6")  # +80 % give or take the noise
    assert path[175] / path[top] < Decimal("0.5")  # -60 % from the top


def test_at_price_keeps_the_invariant() -> None:
    moved = at_price(WETH_USDC, Decimal(4_000 * 10**6) / 10**18)
    assert abs(Decimal(moved.reserve1) / moved.reserve0 * 10**12 - 4000) < Decimal("1e-6")
    k0 = Decimal(WETH_USDC.reserve0) * WETH_USDC.reserve1
    assert abs(Decimal(moved.reserve0) * moved.reserve1 / k0 - 1) < Decimal("1e-12")
