"""A market's depth as the UI draws it, from a ``BookBoard`` (the books on ``sep.market.books``).

    BookBoard (replica per venue and market; aggregated book per pair, all-in)
      -> depth_document(board, base, quote)
         {"market": "WETH/USDC", "base", "quote",
          "venues": [{venue, marketId, seq, takerFee, tickSize, lotSize, bestBid, bestAsk,
                      bids: [[price, size], ...], asks: [...]}],     each venue's own prices
          "depth": {"bids": [{price, size, total}], "asks": [...]}}  all venues, fees in

``depth`` is the consolidated book the planner sweeps (``pipeline.market.board``): a price is
what a taker pays (ask) or receives (bid) per unit *after* the venue's taker fee, and
``total`` is the size available up to that price from the best one, so the curve says how
much a market order of any size would move through, across venues.  ``venues`` keeps each
venue's raw levels (on its own tick grid, before fees), for the table beside the chart.

Money stays decimal strings (``format(Decimal, "f")``): the page shows them through
``format.js`` and converts to numbers only to place points on the chart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.market.board import BookBoard, Pair

MAX_LEVELS = 200
"""Levels per side at most in a document (a chart of more says nothing more)."""


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def markets(board: BookBoard) -> list[dict[str, Any]]:
    """Every pair some venue publishes a book of, with the venues (sorted)."""
    venues: dict[Pair, set[str]] = {}
    for (venue, _market_id), m in board.markets.items():
        venues.setdefault((m.base, m.quote), set()).add(venue)
    return [
        {"market": f"{base}/{quote}", "venues": sorted(names)}
        for (base, quote), names in sorted(venues.items())
    ]


def depth_document(
    board: BookBoard, base: str, quote: str, levels: int = MAX_LEVELS
) -> dict[str, Any] | None:
    """The pair's depth (see the module docstring); ``None``: no venue has a book of it."""
    keys = sorted(
        (k for k, m in board.markets.items() if (m.base, m.quote) == (base, quote)),
    )
    if not keys:
        return None
    venues = []
    for key in keys:
        market, replica = board.markets[key], board.replicas[key]
        bids, asks = replica.levels()
        venues.append(
            {
                "venue": market.venue,
                "marketId": market.market_id,
                "inSync": replica.in_sync,
                "seq": replica.seq,
                "takerFee": market.taker_fee,
                "tickSize": _s(market.tick_size),
                "lotSize": _s(market.lot_size),
                "bestBid": _s(bids[0][0]) if bids else None,
                "bestAsk": _s(asks[0][0]) if asks else None,
                "bids": [[_s(p), _s(s)] for p, s in bids[:levels]],
                "asks": [[_s(p), _s(s)] for p, s in asks[:levels]],
            }
        )
    book = board.book(base, quote)
    depth: dict[str, list[dict[str, str]]] = {"bids": [], "asks": []}
    if book is not None:
        for side in ("bids", "asks"):
            total = Decimal(0)
            for price, size, _parts in getattr(book.book, side)[:levels]:
                amount = book.size(size)
                total += amount
                depth[side].append(
                    {"price": _s(book.price(price)), "size": _s(amount), "total": _s(total)}
                )
    return {
        "market": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "venues": venues,
        "depth": depth,
    }
