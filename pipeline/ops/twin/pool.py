"""Twin of ``rust_ops/src/pool.rs`` (and ``python/pool.rs``): a validated constant-product pool."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.ops.twin.convert import U128_MAX, U128_RANGE, int_in
from pipeline.ops.twin.error import FEE_DENOMINATOR, FEE_HINT, invalid_pool

__all__ = ["Pool"]


@dataclass(frozen=True, slots=True)
class Pool:
    """Twin of ``pipeline.ops.Pool``."""

    pool_id: str
    venue: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee: int

    def __post_init__(self) -> None:
        for name in ("pool_id", "venue", "token0", "token1"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"argument '{name}': expected str")
        for name in ("reserve0", "reserve1", "fee"):
            v, ok = int_in(getattr(self, name), U128_MAX)
            if not ok:
                raise invalid_pool(
                    self.pool_id, "out_of_range", f"{name} must be an int in {U128_RANGE}, got {v}"
                )
            object.__setattr__(self, name, v)  # a plain int, as the Rust getters return
        if self.fee >= FEE_DENOMINATOR:
            raise invalid_pool(
                self.pool_id,
                "fee_out_of_range",
                f"fee {self.fee} is outside 0..=999999 ({FEE_HINT})",
            )
        if self.token0 == self.token1:
            raise invalid_pool(
                self.pool_id, "same_token", f"token0 and token1 are both '{self.token0}'"
            )
