"""Market state that venues expose to the planner."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.models.base import BaseUnits, WireModel


class PoolState(WireModel):
    """A constant-product pool as the router sees it. Reserves in integer base units.

    ``token0``/``token1`` are asset symbols from the asset registry; ``fee`` is in hundredths
    of a basis point, as Uniswap counts it (3000 = 0.30 %).
    """

    pool_id: str
    venue: str
    kind: Literal["constant_product"] = "constant_product"
    chain_id: int
    token0: str
    token1: str
    reserve0: BaseUnits
    reserve1: BaseUnits
    fee: Annotated[int, Field(ge=0, lt=1_000_000)]
