"""An ``ExecutionStep`` resolved against the deployment: pools, token addresses, base units.

Pure: no I/O. The venue turns the result into QuoterV2 and SwapRouter calls:

    step (symbols, Decimal human units, legs by pool id)
      -> Order(tokens by address along the route, fees, amount and limit in base units)
      -> router params, e.g. exactInputSingle((tokenIn, tokenOut, fee, recipient, deadline,
                                               amountIn, amountOutMinimum, 0))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Any

from pipeline.devstack.uniswap import Deployment, PoolInfo, TokenInfo
from pipeline.models.plan import ExecutionStep, SwapMode
from plugins.uniswap_v3.contracts import encode_path

_EXACT = Context(prec=100)  # 2**256 has 78 digits; room for the decimals shift


def to_units(amount: Decimal, decimals: int, *, round_up: bool = False) -> int:
    """Human units to base units; down (what may be spent) unless ``round_up``."""
    scaled = amount.scaleb(decimals, context=_EXACT)
    return int(
        scaled.to_integral_value(
            rounding=ROUND_CEILING if round_up else ROUND_FLOOR, context=_EXACT
        )
    )


def from_units(units: int, decimals: int) -> Decimal:
    return Decimal(units).scaleb(-decimals, context=_EXACT)


class RouteError(Exception):
    """The step does not fit this venue's pools; ``reason`` as in ``StepRejected``."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Order:
    step: ExecutionStep
    pools: tuple[PoolInfo, ...]
    tokens: tuple[TokenInfo, ...]
    """Along the route: token_in, intermediate tokens..., token_out."""
    amount: int
    """EXACT_IN: spent. EXACT_OUT: received."""
    limit: int
    """EXACT_IN: least accepted output. EXACT_OUT: most that may be spent."""

    @property
    def exact_in(self) -> bool:
        return self.step.mode is SwapMode.EXACT_IN

    @property
    def token_in(self) -> TokenInfo:
        return self.tokens[0]

    @property
    def token_out(self) -> TokenInfo:
        return self.tokens[-1]

    @property
    def fees(self) -> tuple[int, ...]:
        return tuple(p.fee for p in self.pools)

    @property
    def max_spend(self) -> int:
        """What the router may pull from the signer: the allowance this order needs."""
        return self.amount if self.exact_in else self.limit

    def path(self) -> bytes:
        """The packed path in the direction the router and quoter want for this mode."""
        addresses = [t.address for t in self.tokens]
        if self.exact_in:
            return encode_path(addresses, self.fees)
        return encode_path(addresses[::-1], self.fees[::-1])

    def router_call(self, recipient: str, deadline: int) -> tuple[str, list[Any]]:
        """(SwapRouter function, arguments) for this order."""
        if len(self.pools) == 1:
            fn = "exactInputSingle" if self.exact_in else "exactOutputSingle"
            params = (
                self.token_in.address,
                self.token_out.address,
                self.pools[0].fee,
                recipient,
                deadline,
                self.amount,
                self.limit,
                0,
            )
            return fn, [params]
        fn = "exactInput" if self.exact_in else "exactOutput"
        return fn, [(self.path(), recipient, deadline, self.amount, self.limit)]

    def quoter_call(self) -> tuple[str, list[Any]]:
        """(QuoterV2 function, arguments): the same swap without a limit."""
        if len(self.pools) == 1:
            fn = "quoteExactInputSingle" if self.exact_in else "quoteExactOutputSingle"
            return fn, [
                (self.token_in.address, self.token_out.address, self.amount, self.pools[0].fee, 0)
            ]
        fn = "quoteExactInput" if self.exact_in else "quoteExactOutput"
        return fn, [self.path(), self.amount]


def resolve(
    step: ExecutionStep, venue: str, deployment: Deployment, pools: Mapping[str, PoolInfo]
) -> Order:
    """``step`` against the deployment, or ``RouteError`` saying what does not fit."""
    if step.venue != venue or any(leg.venue != venue for leg in step.legs):
        raise RouteError("wrong_venue", f"step {step.step_id} is not for venue {venue!r}")
    tokens = [_token(deployment, step.asset_in)]
    route: list[PoolInfo] = []
    for index, leg in enumerate(step.legs):
        pool = pools.get(leg.pool_id)
        if pool is None:
            raise RouteError(
                "unknown_pool",
                f"leg {index}: no pool {leg.pool_id!r} (this venue has {sorted(pools)})",
            )
        if pool in route:
            raise RouteError("bad_route", f"leg {index}: pool {leg.pool_id!r} is used twice")
        if leg.token_in != tokens[-1].symbol:
            raise RouteError(
                "bad_route", f"leg {index} spends {leg.token_in}, expected {tokens[-1].symbol}"
            )
        if {leg.token_in, leg.token_out} != {pool.token0, pool.token1}:
            raise RouteError(
                "bad_route",
                f"leg {index}: pool {pool.pool_id!r} trades "
                f"{pool.token0}/{pool.token1}, not {leg.token_in}->{leg.token_out}",
            )
        route.append(pool)
        tokens.append(_token(deployment, leg.token_out))
    if tokens[-1].symbol != step.asset_out:
        raise RouteError(
            "bad_route", f"the route ends in {tokens[-1].symbol}, expected {step.asset_out}"
        )
    token_in, token_out = tokens[0], tokens[-1]
    if step.mode is SwapMode.EXACT_IN:
        amount = to_units(step.amount_in, token_in.decimals)
        limit = to_units(step.min_out, token_out.decimals, round_up=True)
    else:
        amount = to_units(step.amount_out, token_out.decimals, round_up=True)
        limit = to_units(step.max_in, token_in.decimals)
    if amount <= 0:
        raise RouteError("zero_amount", f"step {step.step_id} moves less than one base unit")
    return Order(step, tuple(route), tuple(tokens), amount, limit)


def _token(deployment: Deployment, symbol: str) -> TokenInfo:
    token = deployment.tokens.get(symbol)
    if token is None:
        raise RouteError(
            "unknown_asset",
            f"no token {symbol!r} on this chain (deployed: {sorted(deployment.tokens)})",
        )
    return token
