"""The built-in ``uniswap_v3`` venue: the real Uniswap V3 contracts through web3, on any node.

Configured under ``plugins.venues.uniswap_v3.config`` in ``topology.yaml`` (see
``UniswapV3Config``; ``{}`` works against ``sep up``'s dev chain). Where the contracts are
comes from the deployment file the dev stack writes (``pipeline.devstack.uniswap``); asset
symbols in steps map to the tokens in that file. The venue's state is a SQLite journal of
signed transactions in its data directory (see ``journal.py``).

Registers a venue (``sep_register_venues``) and a market-data source that reports pool
changes for ``sep.market.pools`` (``sep_register_market_sources``).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from pipeline.plugins.hookspecs import hookimpl
from pipeline.plugins.market import MarketSource, MarketSourceSpec
from pipeline.plugins.venue import VenueContext, VenueSpec
from plugins.uniswap_v3.config import SignerError, UniswapV3Config
from plugins.uniswap_v3.market import POOLS_TOPIC, PoolWatcher, make_pool_watcher
from plugins.uniswap_v3.venue import VENUE_NAME, UniswapV3Venue

__all__ = [
    "POOLS_TOPIC",
    "MarketSource",
    "MarketSourceSpec",
    "PoolWatcher",
    "SignerError",
    "UniswapV3Config",
    "UniswapV3Venue",
    "make_uniswap_v3_venue",
    "sep_register_market_sources",
    "sep_register_venues",
]


def make_uniswap_v3_venue(config: BaseModel, context: VenueContext) -> UniswapV3Venue:
    """The venue factory: no I/O here; the node, the deployment and the signer are opened
    in ``UniswapV3Venue.start``."""
    if not isinstance(config, UniswapV3Config):
        config = UniswapV3Config.model_validate(config.model_dump())
    return UniswapV3Venue(config, context)


@hookimpl
def sep_register_venues(register: Callable[[VenueSpec], None]) -> None:
    register(
        VenueSpec(
            name=VENUE_NAME,
            config_model=UniswapV3Config,
            factory=make_uniswap_v3_venue,
            description=(
                "Uniswap V3 through SwapRouter/QuoterV2 on an EVM node (web3, local signing)"
            ),
            live=True,  # real transactions: a paper twin trades in its place in paper mode
        )
    )


@hookimpl
def sep_register_market_sources(register: Callable[[MarketSourceSpec], None]) -> None:
    register(
        MarketSourceSpec(
            name="uniswap_v3.pools",
            venue=VENUE_NAME,
            topic=POOLS_TOPIC,
            factory=make_pool_watcher,
            description="pool states after every block that swapped, minted or burnt in a pool",
        )
    )
