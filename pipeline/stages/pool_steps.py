"""Pool routes as plan steps, and gas in the units a plan is compared in.

Shared by the pools-only planner (``plan.py``) and the planner of one route over pools and
books (``split_planning.py``), which builds the same swap steps for its pool share.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from pipeline import ops
from pipeline.models.assets import Asset
from pipeline.models.base import built
from pipeline.models.intent import Intent, IntentType
from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.topology.models import Topology

MAX_HOPS = 3
PPM = Decimal(1_000_000)

GAS_PRICE_GWEI = Decimal(1)
"""Gas price assumed when weighing a split against its extra swap (the dev chain's base fee
is about 1 gwei; a deliberate simplification until venues publish their gas price)."""


def gas_price_units(symbol: str, topology: Topology) -> int | None:
    """``GAS_PRICE_GWEI`` in base units of ``symbol`` per gas unit, at the reference prices."""
    prices = topology.risk.reference_prices
    eth, token = prices.get("WETH"), prices.get(symbol)
    if eth is None or token is None or token <= 0:
        return None
    per_gas = GAS_PRICE_GWEI * Decimal("1e-9") * eth / token
    return topology.asset(symbol).to_base_units(per_gas) or None


def fee_fraction(path: ops.GraphPath) -> Decimal:
    """The share of a path's input its pools keep as fees."""
    keep = Decimal(1)
    for leg in path.legs:
        keep *= 1 - Decimal(leg.fee) / PPM
    return 1 - keep


def route_fees(route: ops.GraphRoute, asset_in: Asset) -> Decimal:
    """The pools' fees of a route in the asset spent (each leg carries its pool's fee: a
    lookup in the pools would cost a pass over all of them per intent)."""
    return sum(
        (asset_in.from_base_units(path.amount_in) * fee_fraction(path) for path in route.paths),
        Decimal(0),
    )


def pool_step(
    step_id: str, venue: str, path: ops.GraphPath, intent: Intent, asset_in: Asset, asset_out: Asset
) -> ExecutionStep:
    """One path of a route as a step; its slippage bound from the intent's."""
    slippage = intent.constraints.max_slippage
    amount_in, amount_out = path.amount_in, path.amount_out
    quoted_in = asset_in.from_base_units(amount_in)
    quoted_out = asset_out.from_base_units(amount_out)
    if intent.type is IntentType.DISPOSE:
        mode = SwapMode.EXACT_IN
        floor = (Decimal(amount_out) * (1 - slippage)).to_integral_value(ROUND_FLOOR)
        min_out, max_in = asset_out.from_base_units(int(floor)), quoted_in
    else:
        mode = SwapMode.EXACT_OUT
        ceiling = (Decimal(amount_in) * (1 + slippage)).to_integral_value(ROUND_CEILING)
        min_out, max_in = quoted_out, asset_in.from_base_units(int(ceiling))
    # Built, not validated: every value is computed here from the router's integers
    # (``built``).  The legs, plain fields, validate faster than they would be built, and
    # from a dict by wire name faster still than through ``__init__`` (~1.1 us against
    # ~1.7 a leg: its Python layer).
    leg_of = RouteLeg.model_validate
    return built(
        ExecutionStep,
        step_id=step_id,
        venue=venue,
        mode=mode,
        legs=tuple(
            [
                leg_of(
                    {
                        "poolId": leg.pool_id,
                        "venue": leg.venue,
                        "tokenIn": leg.token_in,
                        "tokenOut": leg.token_out,
                        "amountIn": leg.amount_in,
                        "amountOut": leg.amount_out,
                    }
                )
                for leg in path.legs
            ]
        ),
        asset_in=asset_in.symbol,
        asset_out=asset_out.symbol,
        amount_in=quoted_in,
        min_out=min_out,
        amount_out=quoted_out,
        max_in=max_in,
    )
