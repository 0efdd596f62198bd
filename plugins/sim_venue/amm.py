"""Constant-product swaps along a route, in integer base units, against a snapshot of pools.

Pure functions: they take the pools as they are and return the amounts and the pools as they
would be after the swap, so a quote and a fill are the same computation.  The per-hop math is
the Rust operators in ``pipeline.ops`` (exact integer formulas, Uniswap V2 style):

    out = floor(in * (1e6 - fee) * R_out / (R_in * 1e6 + in * (1e6 - fee)))
    in  = the least input that yields at least ``out``

The whole input goes into the pool (the fee stays in it), so ``R0 * R1`` never decreases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.ops import PoolMathError
from pipeline.ops import amount_in as cp_amount_in
from pipeline.ops import amount_out as cp_amount_out


class SwapError(Exception):
    """The swap cannot happen; ``reason`` is short and machine-readable (see ``StepRejected``)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Pool:
    """A pool's state in base units. ``fee`` in hundredths of a basis point.

    ``seq``: the number of the last fill that moved it (0: none yet), which the ledger sets;
    the swap functions here leave it alone.
    """

    pool_id: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee: int
    seq: int = 0

    def reserves(self, token_in: str) -> tuple[int, int]:
        """(reserve of ``token_in``, reserve of the other token)."""
        if token_in == self.token0:
            return self.reserve0, self.reserve1
        return self.reserve1, self.reserve0

    def after(self, token_in: str, paid: int, received: int) -> Pool:
        """The pool once it took ``paid`` of ``token_in`` and gave ``received`` of the other."""
        if token_in == self.token0:
            reserve0, reserve1 = self.reserve0 + paid, self.reserve1 - received
        else:
            reserve0, reserve1 = self.reserve0 - received, self.reserve1 + paid
        # Built directly: ``dataclasses.replace`` costs three times as much, once per hop of
        # every fill and quote.
        return Pool(self.pool_id, self.token0, self.token1, reserve0, reserve1, self.fee, self.seq)


@dataclass(frozen=True)
class Hop:
    pool_id: str
    token_in: str
    token_out: str


@dataclass(frozen=True)
class Swap:
    amount_in: int
    amount_out: int
    pools: dict[str, Pool]
    """The pools the route touched, as they are after the swap."""


def check_route(
    pools: Mapping[str, Pool], hops: Sequence[Hop], token_in: str, token_out: str
) -> None:
    """Raise ``SwapError`` unless ``hops`` chain known pools from ``token_in`` to ``token_out``.

    A pool may appear once only: the exact-out amounts are computed backwards against the
    reserves before the trade, which is only right when no hop changes another hop's pool.
    """
    if not hops:
        raise SwapError("bad_route", "the route has no legs")
    expected = token_in
    seen: set[str] = set()
    for index, hop in enumerate(hops):
        pool = pools.get(hop.pool_id)
        if pool is None:
            raise SwapError("unknown_pool", f"leg {index}: no pool {hop.pool_id!r}")
        if hop.pool_id in seen:
            raise SwapError("bad_route", f"leg {index}: pool {hop.pool_id!r} is used twice")
        seen.add(hop.pool_id)
        if hop.token_in != expected:
            raise SwapError("bad_route", f"leg {index} spends {hop.token_in}, expected {expected}")
        # The pair's tokens either way round ({in, out} == {token0, token1}, without making
        # two sets a hop: every step is checked when submitted and again when it runs).
        token0, token1 = pool.token0, pool.token1
        if not (
            (hop.token_in == token0 and hop.token_out == token1)
            or (hop.token_in == token1 and hop.token_out == token0)
        ):
            raise SwapError(
                "bad_route",
                f"leg {index}: pool {pool.pool_id!r} trades {pool.token0}/{pool.token1}, "
                f"not {hop.token_in}->{hop.token_out}",
            )
        expected = hop.token_out
    if expected != token_out:
        raise SwapError("bad_route", f"the route ends in {expected}, expected {token_out}")


def swap_exact_in(pools: Mapping[str, Pool], hops: Sequence[Hop], amount_in: int) -> Swap:
    """Spend ``amount_in`` of the first hop's token; each hop's output feeds the next."""
    if amount_in <= 0:
        raise SwapError("zero_amount", "the amount to spend is below one base unit")
    touched: dict[str, Pool] = {}
    amount = amount_in
    for hop in hops:
        pool = pools[hop.pool_id]
        reserve_in, reserve_out = pool.reserves(hop.token_in)
        try:
            out = cp_amount_out(reserve_in, reserve_out, amount, pool.fee)
        except PoolMathError as exc:  # amounts beyond 128 bits
            raise SwapError("out_of_range", f"pool {pool.pool_id}: {exc}") from exc
        if out <= 0:
            # A real pool reverts rather than take the input for nothing.
            raise SwapError(
                "insufficient_output",
                f"{amount} {hop.token_in} in {pool.pool_id} "
                f"buys less than one base unit of {hop.token_out}",
            )
        touched[pool.pool_id] = pool.after(hop.token_in, amount, out)
        amount = out
    return Swap(amount_in=amount_in, amount_out=amount, pools=touched)


def swap_exact_out(pools: Mapping[str, Pool], hops: Sequence[Hop], amount_out: int) -> Swap:
    """Receive exactly ``amount_out`` of the last hop's token, paying the least input.

    Like Uniswap V2's ``getAmountsIn``: walk backwards for what each hop needs, then every
    pool takes exactly that input and gives exactly the next hop's need (any rounding surplus
    stays in the pool, as it does on chain).
    """
    if amount_out <= 0:
        raise SwapError("zero_amount", "the amount to receive is below one base unit")
    needs = [amount_out]  # needs[i] = what hop i must output, built back to front
    for hop in reversed(hops):
        pool = pools[hop.pool_id]
        reserve_in, reserve_out = pool.reserves(hop.token_in)
        if needs[0] >= reserve_out:
            raise SwapError(
                "insufficient_liquidity",
                f"pool {pool.pool_id} holds {reserve_out} {hop.token_out}, {needs[0]} wanted",
            )
        try:
            needs.insert(0, cp_amount_in(reserve_in, reserve_out, needs[0], pool.fee))
        except PoolMathError as exc:  # amounts beyond 128 bits
            raise SwapError("out_of_range", f"pool {pool.pool_id}: {exc}") from exc
    # Now needs = [input of hop 0, output of hop 0 = input of hop 1, ..., amount_out].
    touched = {
        hop.pool_id: pools[hop.pool_id].after(hop.token_in, needs[i], needs[i + 1])
        for i, hop in enumerate(hops)
    }
    return Swap(amount_in=needs[0], amount_out=amount_out, pools=touched)
