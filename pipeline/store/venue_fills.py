"""Fills per venue with their fees, from the ``exec.step_filled`` events alone.

    exec.step_filled payloads (event store, any order)
      -> per venue: {"venue", "fills", "spent": {asset: amount}, "received": {asset: amount},
                     "fees": {asset: amount}, "itemisedFills": n, "unitemisedFills": n}

``spent`` and ``received`` are what this platform paid and got on the venue, fees in (a buy
on a book pays its taker fee on top of the notional; a sell receives the notional less it).
``fees`` sums the fees the venue itemised on its fills (``ExecStepFilled.fee``: a book venue's
taker fee); a pool's fee is inside its price, so its fills count in ``unitemisedFills`` (the
plan's ``estimatedCost`` has the pool fees).  Computed from the event store on each call, so
``sep replay`` cannot change it; fine for a dev stack's history (a long-lived store wants a
rollup).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _add(into: dict[str, Decimal], asset: str, amount: Any) -> None:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return  # a payload the store holds but no Decimal parses: counted, not summed
    into[asset] = into.get(asset, Decimal(0)) + value


def per_venue(fills: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The fills grouped by venue (sorted by name); see the module docstring."""
    venues: dict[str, dict[str, Any]] = {}
    for p in fills:
        venue = str(p.get("venue", ""))
        v = venues.setdefault(
            venue,
            {"fills": 0, "spent": {}, "received": {}, "fees": {}, "unitemised": 0},
        )
        v["fills"] += 1
        _add(v["spent"], str(p.get("assetIn", "")), p.get("amountIn", "0"))
        _add(v["received"], str(p.get("assetOut", "")), p.get("amountOut", "0"))
        if "fee" in p:
            _add(v["fees"], str(p.get("feeAsset", "")), p["fee"])
        else:
            v["unitemised"] += 1
    return [
        {
            "venue": venue,
            "fills": v["fills"],
            "spent": {a: _plain(x) for a, x in sorted(v["spent"].items())},
            "received": {a: _plain(x) for a, x in sorted(v["received"].items())},
            "fees": {a: _plain(x) for a, x in sorted(v["fees"].items())},
            "itemisedFills": v["fills"] - v["unitemised"],
            "unitemisedFills": v["unitemised"],
        }
        for venue, v in sorted(venues.items())
    ]
