"""Exact conversions between human Decimals and the engine's ints (base units, ticks, lots).

The default decimal context has 28 digits and would silently round a large wei amount; these
use one wide enough for any 256-bit integer and say which way they round.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal

_EXACT = Context(prec=100)


def to_units(amount: Decimal, decimals: int, *, round_up: bool = False) -> int:
    """``amount`` in base units; rounds down unless ``round_up``."""
    return steps(amount.scaleb(decimals, context=_EXACT), Decimal(1), round_up=round_up)


def from_units(units: int, decimals: int) -> Decimal:
    """``units`` base units as an exact human amount (``1500000``, 6 -> ``1.500000``)."""
    return Decimal(units).scaleb(-decimals, context=_EXACT)


def exact_units(amount: Decimal, decimals: int) -> int | None:
    """``amount`` in base units if it is a whole number of them, else ``None``."""
    scaled = amount.scaleb(decimals, context=_EXACT)
    whole = scaled.to_integral_value(context=_EXACT)
    return int(whole) if whole == scaled else None


def steps(amount: Decimal, size: Decimal, *, round_up: bool = False) -> int:
    """How many ``size`` steps (ticks, lots) ``amount`` is: rounded down unless ``round_up``."""
    ratio = _EXACT.divide(amount, size)
    return int(
        ratio.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR, context=_EXACT)
    )


def of_steps(count: int, size: Decimal) -> Decimal:
    """``count`` steps of ``size`` as an exact Decimal (prices and sizes on the wire)."""
    return _EXACT.multiply(Decimal(count), size)
