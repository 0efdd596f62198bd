"""The built-in ``clob`` venue: an order-book exchange with a price-time matching engine.

Each market has a matching engine (``engine.py``: limit, market, IOC, FOK, post-only, maker and
taker fees, tick and lot sizes), a simulated maker quoting around a moving reference price
(``makers.py``), and a SQLite ledger of orders and fills shared by every worker
(``ledger.py``).  The ``Venue`` face places a step as an IOC limit at its price bound
(``orders.py``); the book source publishes L2 snapshots and sequenced deltas (``books.py``,
``market.py``) for ``sep.market.books``: each instance registers a market source
(``<instance>.books``) that a worker runs when the instance is enabled.

Several instances stand for competing exchanges: each is a key under ``plugins.venues`` in
``topology.yaml`` with its own config (``ClobVenueConfig``).  The topology names a venue by
its key and the manager looks the key up among registered venue names, so this plugin
registers one ``VenueSpec`` per instance name in ``INSTANCES``.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.market import MarketData, MarketSourceSpec
from pipeline.plugins.venue import VenueContext, VenueSpec
from pipeline.topology.loader import TopologyError, yaml_path
from plugins.clob_venue.books import BookPublication, BookReplica, BookState
from plugins.clob_venue.config import ClobVenueConfig, MakerConfig, MarketConfig
from plugins.clob_venue.engine import (
    MatchingEngine,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from plugins.clob_venue.ledger import Ledger, LedgerError
from plugins.clob_venue.market import (
    BOOKS_TOPIC,
    BookRecords,
    BookSource,
    make_book_source,
    publish_books,
)
from plugins.clob_venue.orders import OrderError, OrderInfo
from plugins.clob_venue.venue import ClobVenue

__all__ = [
    "BOOKS_TOPIC",
    "INSTANCES",
    "BookPublication",
    "BookRecords",
    "BookReplica",
    "BookSource",
    "BookState",
    "ClobVenue",
    "ClobVenueConfig",
    "Ledger",
    "LedgerError",
    "MakerConfig",
    "MarketConfig",
    "MatchingEngine",
    "OrderError",
    "OrderInfo",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
    "make_book_source",
    "make_clob_venue",
    "publish_books",
    "sep_register_market_sources",
    "sep_register_venues",
]

INSTANCES: tuple[str, ...] = ("clob", "clob_a", "clob_b")
"""The venue names this plugin answers to (keys under ``plugins.venues``)."""


def make_clob_venue(name: str) -> Callable[[BaseModel, VenueContext], ClobVenue]:
    """The factory of instance ``name``: no I/O here, the ledger opens in ``start``.

    The checks that need the asset registry run again here with it as validation context;
    their errors name the YAML path like the manager's own.
    """

    def factory(config: BaseModel, context: VenueContext) -> ClobVenue:
        data = config.model_dump(mode="json")
        try:
            checked = ClobVenueConfig.model_validate(data, context={"assets": context.assets})
        except ValidationError as exc:
            prefix = f"plugins.venues.{name}.config"
            raise TopologyError(
                "topology.yaml",
                [
                    (f"{prefix}.{yaml_path(e['loc'], data)}".rstrip("."), e["msg"])
                    for e in exc.errors()
                ],
            ) from exc
        return ClobVenue(name, checked, context)

    return factory


@hookimpl
def sep_register_venues(register: Callable[[VenueSpec], None]) -> None:
    for name in INSTANCES:
        register(
            VenueSpec(
                name=name,
                config_model=ClobVenueConfig,
                factory=make_clob_venue(name),
                description="order book: price-time matching, makers around a moving reference, "
                "L2 snapshots and deltas (SQLite ledger)",
            )
        )


@hookimpl
def sep_register_market_sources(register: Callable[[MarketSourceSpec], None]) -> None:
    for name in INSTANCES:
        register(
            MarketSourceSpec(
                name=f"{name}.books",
                venue=name,
                topic=BOOKS_TOPIC,
                factory=make_book_source,
                description="L2 books: a snapshot per market, then sequenced deltas",
                data=MarketData.BOOKS,
            )
        )
