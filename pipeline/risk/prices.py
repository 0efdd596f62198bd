"""Marks: a mid price per asset in the risk quote asset, from the pools the platform sees.

    pools (per venue, PoolState in base units)                    PriceBoard.update
      -> per pool, the price of each token in the other (reserves, decimals applied)
      -> per asset: the deepest pool against the quote asset, else the deepest pool against
         an asset that has one (one bridge: WBTC -> WETH -> USDC)
      -> Mark(price, at_ms, source)                               PriceBoard.mark

A constant-product pool's mid is ``reserve_other / reserve_asset`` (no fee: the fee is a
cost of trading, not part of the value).  A Uniswap V3 state carries the virtual reserves of
its active liquidity, whose ratio is the same spot price.  "Deepest" compares the pools' value
on the quote side, so a thin pool cannot set the mark while a deep one exists.

Age: ``at_ms`` is when the state was known current -- read from the venue now, or, for a
venue whose states come from the market feed, when this process last saw a new state of
that pool.  A quiet pool's feed state grows old while its price is still right, so
``MarketMarks`` asks such a venue directly once its states are older than half the limit
(the planner does the same until a feed has any state).  A mark older than
``price_max_age_ms`` is stale: the intent is refused (``stale_prices: reject``, the default:
a desk does not trade blind) or valued at its reference price (``reference``).  An asset no
pool prices is valued at its reference price, if the topology gives one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from pipeline.models.market import PoolState
from pipeline.plugins.venue import Venue
from pipeline.topology.models import RiskLimits

if TYPE_CHECKING:
    from pipeline.stages.base import MarketView

log = logging.getLogger(__name__)

ONE = Decimal(1)


@dataclass(frozen=True)
class Mark:
    """One asset's price in the quote asset."""

    price: Decimal
    at_ms: int
    """When the state it comes from was known current."""
    source: str
    """``venue/pool_id`` (``a via b`` through a bridge), ``quote`` or ``reference``."""


@dataclass(frozen=True)
class Unpriced:
    """Why an asset has no usable mark, as a risk rejection states it."""

    asset: str
    rule: str
    """``stale_price`` (a mark too old) or ``unpriced`` (no pool, no reference price)."""
    reason: str
    limit: str
    actual: str


class PriceBoard:
    """Marks from the latest pool states (pure; ``MarketMarks`` feeds it)."""

    def __init__(self, risk: RiskLimits, decimals: Mapping[str, int]) -> None:
        self._risk = risk
        self._decimals = decimals
        self._states: dict[tuple[str, str], tuple[PoolState, int]] = {}
        """(venue, pool id) -> its latest state and when it was known current."""
        self._marks: dict[str, Mark] | None = None

    @property
    def quote(self) -> str:
        return self._risk.quote_asset

    def update(self, venue: str, states: Sequence[PoolState], at_ms: int) -> None:
        """The venue's pools, known current at ``at_ms``."""
        for key in [k for k in self._states if k[0] == venue]:
            del self._states[key]
        for state in states:
            self._states[(venue, state.pool_id)] = (state, at_ms)
        self._marks = None

    def age_ms(self, venue: str, now_ms: int) -> int | None:
        """Age of the venue's oldest state (None: none known)."""
        ages = [now_ms - at for (v, _p), (_s, at) in self._states.items() if v == venue]
        return max(ages) if ages else None

    def marks(self) -> dict[str, Mark]:
        """The market mark of every asset some pool prices (the quote asset: 1)."""
        if self._marks is None:
            self._marks = self._compute()
        return self._marks

    def mark(self, asset: str, now_ms: int) -> Mark | Unpriced:
        """The mark to value ``asset`` at now, under the topology's staleness rule."""
        if asset == self.quote:
            return Mark(ONE, now_ms, "quote")
        risk = self._risk
        reference = risk.reference_prices.get(asset)
        found = self.marks().get(asset)
        if found is None:
            if reference is not None:
                return Mark(reference, now_ms, "reference")
            return Unpriced(
                asset,
                "unpriced",
                f"no pool prices {asset} in {self.quote} and it has no reference price",
                "a price",
                "none",
            )
        age = now_ms - found.at_ms
        if age <= risk.price_max_age_ms:
            return found
        if risk.stale_prices == "reference" and reference is not None:
            return Mark(reference, now_ms, "reference")
        return Unpriced(
            asset,
            "stale_price",
            f"the price of {asset} ({found.source}) is {age} ms old, older than "
            f"price_max_age_ms {risk.price_max_age_ms}: its notional cannot be judged",
            f"{risk.price_max_age_ms} ms",
            f"{age} ms",
        )

    def _compute(self) -> dict[str, Mark]:
        quote = self.quote
        # (price of a in b, depth in b, at, source) per ordered pair, deepest pool kept
        pairs: dict[tuple[str, str], tuple[Decimal, Decimal, int, str]] = {}
        for (venue, pool_id), (state, at) in self._states.items():
            d0 = self._decimals.get(state.token0)
            d1 = self._decimals.get(state.token1)
            if d0 is None or d1 is None or state.reserve0 <= 0 or state.reserve1 <= 0:
                continue
            r0 = Decimal(state.reserve0).scaleb(-d0)
            r1 = Decimal(state.reserve1).scaleb(-d1)
            source = f"{venue}/{pool_id}"
            sides = ((state.token0, r0, state.token1, r1), (state.token1, r1, state.token0, r0))
            for a, ra, b, rb in sides:
                known = pairs.get((a, b))
                if known is None or rb > known[1]:
                    pairs[(a, b)] = (rb / ra, rb, at, source)
        marks: dict[str, Mark] = {quote: Mark(ONE, 0, "quote")}
        for (a, b), (price, _depth, at, source) in pairs.items():
            if b == quote and a != quote:
                marks[a] = Mark(price, at, source)
        bridged: dict[str, tuple[Decimal, Mark]] = {}
        for (a, b), (price, depth, at, source) in pairs.items():
            if a in marks or b == quote or b not in marks:
                continue
            via = marks[b]
            value = depth * via.price  # the bridge pool's depth in the quote asset
            if a not in bridged or value > bridged[a][0]:
                bridged[a] = (
                    value,
                    Mark(price * via.price, min(at, via.at_ms), f"{source} via {via.source}"),
                )
        marks.update({a: m for a, (_v, m) in bridged.items()})
        del marks[quote]
        return marks


class PoolSource(Protocol):
    """Where pool states come from (``StageContext`` is one): the market feed's view for the
    venues that publish, the venues themselves for the others.  Read at each refresh: a
    worker wires its market feed after the stages are built."""

    venues: dict[str, Venue]
    market: MarketView | None
    market_venues: frozenset[str]


class MarketMarks:
    """Keeps a ``PriceBoard`` current: at most every ``price_refresh_ms``, each venue's pools
    from the market feed (or asked of the venue, as the planner does)."""

    def __init__(
        self,
        risk: RiskLimits,
        decimals: Mapping[str, int],
        source: PoolSource,
        clock: Callable[[], int],
    ) -> None:
        self.board = PriceBoard(risk, decimals)
        self._risk = risk
        self._source = source
        self._clock = clock
        self._refreshed: int | None = None
        self._seen: dict[tuple[str, str], tuple[PoolState, int]] = {}
        """Feed states by (venue, pool): the object last seen and when it first was."""
        self._read_at: dict[str, tuple[list[PoolState], int]] = {}
        """Feed venues asked directly: the states read and when."""
        self._lock = asyncio.Lock()
        self.failures = 0
        self._memo: dict[str, Mark | Unpriced] = {}
        """``mark``'s answers at ``_memo_ms`` on the board's marks ``_memo_of``."""
        self._memo_of: dict[str, Mark] | None = None
        self._memo_ms = -1

    def mark(self, asset: str) -> Mark | Unpriced:
        # Asked ~10 times per intent (its two assets, by each check): the answer is a pure
        # function of the board's marks, the asset and the millisecond, so it is kept for as
        # long as neither moves (within a batch, most asks).
        now = self._clock()
        marks = self.board.marks()
        if marks is not self._memo_of or now != self._memo_ms:
            self._memo.clear()
            self._memo_of, self._memo_ms = marks, now
        found = self._memo.get(asset)
        if found is None:
            found = self._memo[asset] = self.board.mark(asset, now)
        return found

    def last(self, asset: str) -> Decimal | None:
        """The latest mark whatever its age, else the reference price (for P&L: a stale
        mark is a better estimate than none; intents are still refused on it)."""
        if asset == self.board.quote:
            return ONE
        found = self.board.marks().get(asset)
        if found is not None:
            return found.price
        return self._risk.reference_prices.get(asset)

    async def refresh(self, force: bool = False) -> None:
        async with self._lock:
            now = self._clock()
            if (
                not force
                and self._refreshed is not None
                and now - self._refreshed < self._risk.price_refresh_ms
            ):
                return
            self._refreshed = now
            await self._read(now)

    async def _read(self, now: int) -> None:
        source = self._source
        published = source.market.pools() if source.market is not None else {}
        asked: list[str] = []
        for name in source.venues:
            states = published.get(name) if name in source.market_venues else None
            if not states:
                asked.append(name)
                continue
            newest = max(self._first_seen(name, s, now) for s in states)
            read = self._read_at.get(name)
            if read is not None and read[1] >= newest:
                states, oldest = read  # the venue was asked after the feed last moved
            else:
                oldest = min(self._first_seen(name, s, now) for s in states)
            self.board.update(name, states, oldest)
            if now - oldest > self._risk.price_max_age_ms // 2:
                asked.append(name)  # a quiet feed: the venue says what is current
        results = await asyncio.gather(
            *(_pools(source.venues[name]) for name in asked), return_exceptions=True
        )
        for name, result in zip(asked, results, strict=True):
            if isinstance(result, BaseException):
                self.failures += 1
                log.warning(
                    "pools not readable for marks; older marks age",
                    extra={"venue": name, "error": repr(result)[:300]},
                )
                continue
            self._read_at[name] = (result, now)
            self.board.update(name, result, now)

    def _first_seen(self, venue: str, state: PoolState, now: int) -> int:
        key = (venue, state.pool_id)
        known = self._seen.get(key)
        if known is not None and known[0] is state:
            return known[1]
        self._seen[key] = (state, now)
        return now


async def _pools(venue: Venue) -> list[PoolState]:
    # A coroutine per venue, so that whatever one raises is that venue's failure alone.
    return await venue.pools()
