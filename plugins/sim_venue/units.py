"""Exact conversion between human ``Decimal`` amounts and integer base units.

``Asset.to_base_units`` works in the default decimal context (28 significant digits), which
silently rounds amounts like 12345678901.123456789012345678 DAI.  A venue settles money, so
these conversions use a context wide enough for any 256-bit integer and say how they round.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal

# 2**256 has 78 digits; a few more leave room for the decimals shift.
_EXACT = Context(prec=100)


def to_units(amount: Decimal, decimals: int, *, round_up: bool = False) -> int:
    """``amount`` in base units; rounds down (what can be spent) unless ``round_up``."""
    scaled = amount.scaleb(decimals, context=_EXACT)
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    return int(scaled.to_integral_value(rounding=rounding, context=_EXACT))


def from_units(units: int, decimals: int) -> Decimal:
    """``units`` base units as an exact human amount (``1500000``, 6 -> ``1.500000``)."""
    return Decimal(units).scaleb(-decimals, context=_EXACT)
