"""Market state that venues expose to the planner."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

from pipeline.models.base import BaseUnits, WireModel

# Signed integer amounts (a tick's liquidityNet) exceed 64 bits too: strings on the wire.
SignedUnits = Annotated[int, PlainSerializer(lambda n: str(n), return_type=str, when_used="json")]


class TickLiquidity(WireModel):
    """An initialised tick of a concentrated-liquidity pool: crossing it upwards adds
    ``liquidity_net`` to the active liquidity (downwards subtracts it)."""

    tick: int
    liquidity_net: SignedUnits


class PoolState(WireModel):
    """A constant-product pool as the router sees it. Reserves in integer base units.

    ``token0``/``token1`` are asset symbols from the asset registry; ``fee`` is in hundredths
    of a basis point, as Uniswap counts it (3000 = 0.30 %).

    A Uniswap V3 pool (``kind="concentrated"``) reports the *virtual* reserves of its active
    liquidity (``L / sqrtP`` and ``L * sqrtP``): a constant-product router gets the right spot
    price and the depth near it. The optional V3 fields carry the exact state for V3 math:
    ``sqrt_price_x96``, ``liquidity``, ``tick``, ``tick_spacing`` and every initialised tick
    with its ``liquidity_net``, sorted by tick; ``block`` is the block they were read at.

    ``version`` says which trades a state includes, so a planner can tell when its own trade
    has reached the state it plans on (``pipeline.stages.pending_flow``): a trade reported
    as landed at ``v`` (``ExecStepFilled.landed_at``) is in every state of its pools whose
    ``version >= v``.  A chain's version is the ``block`` the state was read at; a venue
    without blocks numbers its trades and sets ``seq`` to the last one that moved this pool
    (the sim venue's ledger).
    """

    pool_id: str
    venue: str
    kind: Literal["constant_product", "concentrated"] = "constant_product"
    chain_id: int
    token0: str
    token1: str
    reserve0: BaseUnits
    reserve1: BaseUnits
    fee: Annotated[int, Field(ge=0, lt=1_000_000)]
    sqrt_price_x96: BaseUnits | None = None
    liquidity: BaseUnits | None = None
    tick: int | None = None
    tick_spacing: Annotated[int, Field(gt=0)] | None = None
    ticks: tuple[TickLiquidity, ...] | None = None
    block: int | None = None
    seq: Annotated[int, Field(ge=0)] | None = None

    @property
    def version(self) -> int | None:
        """``seq`` if the venue numbers its trades, else ``block``; ``None``: unknown."""
        return self.seq if self.seq is not None else self.block
