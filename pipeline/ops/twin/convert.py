"""Twin of ``rust_ops/src/python/convert.rs``: what the bindings accept at the boundary.

A non-int is a ``TypeError`` (``operator.index``), as PyO3's extraction raises; an int out of
range is left to the caller, which raises its own named error with the decimal value.
"""

from __future__ import annotations

import operator
from typing import SupportsIndex

__all__ = ["U64_MAX", "U64_RANGE", "U128_MAX", "U128_RANGE", "int_in"]

U64_MAX = 2**64 - 1
U128_MAX = 2**128 - 1
U64_RANGE = "0..=2**64-1"
U128_RANGE = "0..=2**128-1"


def int_in(value: SupportsIndex, top: int) -> tuple[int, bool]:
    """``operator.index(value)`` (``TypeError`` if not an int) and whether it is in ``0..=top``."""
    v = operator.index(value)
    return v, 0 <= v <= top
