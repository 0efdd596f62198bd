"""Twin of ``rust_ops/src/error.rs``: the fee unit, and the named errors shared by the
constant-product math and the pools, each with its code and message (the route queries' are
checked where the twin's graph parses a query).

The twin raises the compiled module's own classes, so ``except PoolMathError`` catches either
implementation; :func:`error` sets ``code`` as the bindings do (``python/errors.rs``). The V3
and book errors live with their operators (``v3/error.rs``, ``books/error.rs``).
"""

from __future__ import annotations

from typing import TypeVar

from pipeline._rust_ops import InvalidPoolError, PoolMathError, RustOpsError

__all__ = [
    "FEE_DENOMINATOR",
    "FEE_HINT",
    "error",
    "fee_out_of_range",
    "invalid_pool",
]

FEE_DENOMINATOR = 1_000_000
"""Fees are in hundredths of a basis point: ``fee / FEE_DENOMINATOR`` is the fraction."""
FEE_HINT = "hundredths of a basis point: 3000 = 0.30 %"

_E = TypeVar("_E", bound=RustOpsError)


def error(cls: type[_E], code: str, message: str) -> _E:
    """``cls(message)`` with ``code`` set, as ``python/errors.rs::to_pyerr`` raises it."""
    err = cls(message)
    err.code = code
    return err


def fee_out_of_range(fee: int) -> PoolMathError:
    return error(PoolMathError, "fee_out_of_range", f"fee {fee} is outside 0..=999999 ({FEE_HINT})")


def invalid_pool(pool_id: str, code: str, message: str) -> InvalidPoolError:
    """``InvalidPoolError``: ``message`` about the pool, prefixed with its id; ``pool_id`` set."""
    err = error(InvalidPoolError, code, f"pool '{pool_id}': {message}")
    err.pool_id = pool_id
    return err
