"""Uniswap V3 pool states as :class:`~pipeline.ops.V3Pool`: from a ``PoolState`` to exact quotes.

A venue reports a V3 pool as a ``PoolState`` with ``kind="concentrated"`` and the exact state
(``sqrt_price_x96``, ``liquidity``, ``tick``, ``tick_spacing`` and, when it read them, the
initialised ``ticks``). :func:`v3_pool` turns that into the Rust operator's pool;
:func:`zero_for_one` gives the direction of a swap from its input token. A state without
``ticks`` gives a pool that quotes exactly inside its current tick-spacing interval and raises
``PoolMathError("range_exceeded")`` beyond it.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from pipeline.models.market import PoolState
from pipeline.ops import V3Pool

__all__ = ["v3_pool", "virtual_reserves", "zero_for_one"]

Q96 = 2**96

P = TypeVar("P", covariant=True)


class V3PoolFactory(Protocol[P]):
    """``V3Pool`` of either implementation (the compiled one or the twin's)."""

    def __call__(
        self,
        sqrt_price_x96: int,
        liquidity: int,
        tick: int,
        tick_spacing: int,
        fee: int,
        ticks: tuple[tuple[int, int], ...] | None = None,
    ) -> P: ...


def v3_pool(state: PoolState, factory: V3PoolFactory[P] = V3Pool) -> P:  # type: ignore[assignment]
    """The exact V3 pool of ``state`` (``factory=pipeline.ops.twin.V3Pool`` for the twin).

    Raises:
        ValueError: ``state`` is not a concentrated-liquidity pool with its V3 fields.
        InvalidV3PoolError: the fields do not describe a V3 pool state.
    """
    if (
        state.kind != "concentrated"
        or state.sqrt_price_x96 is None
        or state.liquidity is None
        or state.tick is None
        or state.tick_spacing is None
    ):
        raise ValueError(
            f"pool {state.pool_id!r} is not a Uniswap V3 pool with its exact state "
            "(kind='concentrated', sqrt_price_x96, liquidity, tick, tick_spacing)"
        )
    ticks = None if state.ticks is None else tuple((t.tick, t.liquidity_net) for t in state.ticks)
    return factory(
        state.sqrt_price_x96, state.liquidity, state.tick, state.tick_spacing, state.fee, ticks
    )


def zero_for_one(state: PoolState, token_in: str) -> bool:
    """Whether paying ``token_in`` into the pool is a token0 -> token1 swap.

    Raises:
        ValueError: ``token_in`` is neither of the pool's tokens.
    """
    if token_in == state.token0:
        return True
    if token_in == state.token1:
        return False
    raise ValueError(
        f"{token_in!r} is not a token of pool {state.pool_id!r} ({state.token0}/{state.token1})"
    )


def virtual_reserves(liquidity: int, sqrt_price_x96: int) -> tuple[int, int]:
    """(x, y) = (L / sqrtP, L * sqrtP): a constant-product pool with the same spot price
    and the same depth near it as the active range (``PoolState.reserve0/1`` of a V3 pool)."""
    if sqrt_price_x96 == 0:
        return 0, 0
    return liquidity * Q96 // sqrt_price_x96, liquidity * sqrt_price_x96 // Q96
