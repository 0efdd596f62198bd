"""What an intent is worth: shared by the stages that judge (validate) and rank (prioritise).

Deliberate simplification (see the README): reference prices from the topology, not the
market feed; the risk engine issue replaces them with marked prices.
"""

from __future__ import annotations

from decimal import Decimal

from pipeline.models.intent import Intent
from pipeline.topology.models import Topology


def notional(intent: Intent, topology: Topology) -> Decimal | None:
    """The intent's size in the risk quote asset at the reference price; None if unpriced."""
    price = topology.risk.reference_prices.get(intent.subject.asset.symbol)
    if price is None:
        return None
    return (intent.subject.amount or Decimal(0)) * price
