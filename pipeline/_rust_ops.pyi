"""Rust operators (crate ``rust_ops``): exact constant-product pool math, best-route search over
a :class:`RouteGraph`, exact Uniswap V3 concentrated-liquidity math (:class:`V3Pool`),
order-book aggregation and sweeps (:func:`aggregate_books`, :func:`sweep`), Kafka's partitioner.

Private: import from ``pipeline.ops``. Every operator has a pure-Python twin in
``pipeline.ops.twin`` with identical results.

Conventions:

- Amounts and reserves are Python ints in integer base units, ``0..=2**128-1``. Results are
  exact (intermediates use wide integers, up to 2240 bits); nothing is rounded through floats.
- ``fee`` is in hundredths of a basis point, Uniswap V3's unit: ``3000`` is 0.30 %, the
  denominator is :data:`FEE_DENOMINATOR` (1_000_000); valid fees are ``0..=999_999``.
- Errors are :class:`RustOpsError` subclasses with a stable ``code``; a non-int where an int is
  expected (or a non-str where a str is) is a plain ``TypeError``.
- Route searches release the GIL.
"""

from collections.abc import Iterable
from typing import SupportsIndex, final

FEE_DENOMINATOR: int
"""1_000_000: ``fee`` is counted in millionths (hundredths of a basis point)."""

MAX_HOPS: int
"""6: the largest ``max_hops`` a route search accepts."""

class RustOpsError(Exception):
    """Base of every error raised by the Rust operators (and by their twin)."""

    code: str
    """Stable machine-readable reason, e.g. ``"insufficient_liquidity"``."""

class PoolMathError(RustOpsError):
    """Pool arithmetic that cannot be carried out.

    Codes: ``out_of_range`` (an argument outside ``0..=2**128-1``), ``fee_out_of_range``
    (``fee >= 1_000_000``), ``zero_reserve``, ``insufficient_liquidity`` (``amount_out >=
    reserve_out``), ``input_overflow`` (the needed input exceeds ``2**128-1``). Checked in that
    order, arguments left to right.
    """

class InvalidPoolError(RustOpsError):
    """A pool definition that cannot be used.

    Codes: ``out_of_range`` (a reserve or fee outside ``0..=2**128-1``), ``fee_out_of_range``,
    ``same_token`` (``token0 == token1``).
    """

    pool_id: str
    """The pool the error is about."""

class RouteQueryError(RustOpsError):
    """A route query that cannot be answered as asked.

    Codes, in the order checked: ``out_of_range`` (the amount, the gas price),
    ``max_hops_out_of_range`` (outside ``1..=MAX_HOPS``), ``max_splits_out_of_range`` (outside
    ``1..=MAX_SPLITS``), ``same_token`` (``token_in == token_out``), ``zero_amount``.
    """

def amount_out(
    reserve_in: SupportsIndex,
    reserve_out: SupportsIndex,
    amount_in: SupportsIndex,
    fee: SupportsIndex,
) -> int:
    """Output of swapping ``amount_in`` into a constant-product pool, exactly as Uniswap V2.

    ``floor(amount_in*(1e6-fee)*reserve_out / (reserve_in*1e6 + amount_in*(1e6-fee)))``.
    ``amount_in=0`` gives 0; the result is always below ``reserve_out``.

    >>> amount_out(1_000_000, 1_000_000, 1_000, 3000)
    996

    Raises:
        PoolMathError: ``out_of_range``, ``fee_out_of_range``, ``zero_reserve``.
    """

def amount_in(
    reserve_in: SupportsIndex,
    reserve_out: SupportsIndex,
    amount_out: SupportsIndex,
    fee: SupportsIndex,
) -> int:
    """Least input for which :func:`amount_out` yields at least ``amount_out``.

    ``ceil(amount_out*reserve_in*1e6 / ((reserve_out-amount_out)*(1e6-fee)))``: the exact
    inverse. (Uniswap V2's ``getAmountIn`` adds 1 to the floor instead, one unit more whenever
    the division is exact.) ``amount_out=0`` needs 0.

    >>> amount_in(1_000_000, 1_000_000, 996, 3000)
    1000

    Raises:
        PoolMathError: ``out_of_range``, ``fee_out_of_range``, ``zero_reserve``,
            ``insufficient_liquidity`` (``amount_out >= reserve_out``), ``input_overflow``.
    """

@final
class Pool:
    """A constant-product pool, immutable, hashable, equal by value.

    Field names match ``pipeline.models.market.PoolState``; :meth:`RouteGraph.update_pool`
    takes one. Zero reserves are allowed (the router skips such a pool).

    Raises:
        InvalidPoolError: ``out_of_range`` (reserve0, reserve1, fee in that order),
            ``fee_out_of_range``, ``same_token``.
        TypeError: a non-str id/venue/token or a non-int reserve/fee.
    """

    def __init__(
        self,
        pool_id: str,
        venue: str,
        token0: str,
        token1: str,
        reserve0: SupportsIndex,
        reserve1: SupportsIndex,
        fee: SupportsIndex,
    ) -> None: ...
    @property
    def pool_id(self) -> str:
        """Unique id of the pool (chain address, or the sim venue's name for it)."""
    @property
    def venue(self) -> str:
        """Venue (plugin name) owning the pool."""
    @property
    def token0(self) -> str:
        """First token (asset symbol)."""
    @property
    def token1(self) -> str:
        """Second token (asset symbol)."""
    @property
    def reserve0(self) -> int:
        """Reserve of ``token0``, base units."""
    @property
    def reserve1(self) -> int:
        """Reserve of ``token1``, base units."""
    @property
    def fee(self) -> int:
        """Fee in hundredths of a basis point (3000 = 0.30 %)."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

# --- Uniswap V3 concentrated liquidity (rust_ops/src/v3) -----------------------------------

MIN_TICK: int
"""-887272, the lowest tick (``TickMath.MIN_TICK``)."""

MAX_TICK: int
"""887272, the highest tick."""

MIN_SQRT_RATIO: int
"""4295128739 = ``sqrt_ratio_at_tick(MIN_TICK)``, the lowest price a pool can have."""

MAX_SQRT_RATIO: int
"""``sqrt_ratio_at_tick(MAX_TICK)``; prices are always strictly below it."""

class InvalidV3PoolError(RustOpsError):
    """A Uniswap V3 pool state that cannot be used.

    Codes, in the order checked: ``out_of_range`` (an int outside its Solidity type:
    sqrt_price_x96 ``uint160``, liquidity ``uint128``, tick and tick_spacing ``int24``, fee
    ``uint24``, then per tick its ``int24`` tick and ``int128`` liquidity_net),
    ``fee_out_of_range``, ``tick_spacing_out_of_range`` (outside ``1..=16383``),
    ``sqrt_price_out_of_range`` (outside ``MIN_SQRT_RATIO..MAX_SQRT_RATIO``), ``tick_mismatch``
    (``tick`` is not the price's tick, nor the one below it that a pool reports right after
    crossing a tick downwards), then over the ticks ``tick_not_usable`` (off the spacing grid or
    outside the tick bounds), ``ticks_not_sorted``, ``liquidity_net_inconsistent`` (a running sum
    outside ``0..=2**128-1``, or a total other than 0), and last ``liquidity_mismatch``
    (``liquidity`` is not the sum of ``liquidity_net`` at or below ``tick``).
    """

@final
class V3SwapResult:
    """What a swap does, exactly as ``UniswapV3Pool.swap`` would. Produced by :class:`V3Pool`.

    The pool stops early only when the price reaches the limit (its liquidity is exhausted):
    then ``amount_in_used`` (exact input) or ``amount_out`` (exact output) is below the amount
    asked, as in the contract (QuoterV2 reports such a partial exact-input swap as is).
    """

    @property
    def amount_in_used(self) -> int:
        """Input taken by the pool, fee included (QuoterV2's ``amountIn`` for exact output)."""
    @property
    def amount_out(self) -> int:
        """Output paid by the pool (QuoterV2's ``amountOut`` for exact input)."""
    @property
    def fee_amount(self) -> int:
        """Part of ``amount_in_used`` that went to fees."""
    @property
    def sqrt_price_after(self) -> int:
        """The pool's price afterwards (QuoterV2's ``sqrtPriceX96After``)."""
    @property
    def tick_after(self) -> int:
        """The pool's tick afterwards."""
    @property
    def liquidity_after(self) -> int:
        """The pool's active liquidity afterwards."""
    @property
    def ticks_crossed(self) -> int:
        """Initialised ticks crossed, each a ``liquidityNet`` update on chain (for gas
        estimates; QuoterV2's ``initializedTicksCrossed`` counts the end ticks differently)."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class V3Pool:
    """A Uniswap V3 pool state for exact quotes, immutable, hashable, equal by value.

    Integer math identical to the V3 contracts (FullMath, TickMath, SqrtPriceMath,
    SwapMath, the pool's swap loop), so quotes equal QuoterV2's to the wei. Fields as in
    ``slot0``/``liquidity()``: ``sqrt_price_x96`` is ``sqrt(token1/token0) * 2**96``; ``fee`` is
    in hundredths of a basis point (3000 = 0.30 %); ``zero_for_one`` means token0 in, token1 out.

    ``ticks`` lists every initialised tick (``liquidityGross > 0``; a ``liquidity_net`` of 0
    is fine) as ``(tick, liquidity_net)`` tuples, strictly increasing. With them swaps cross
    ticks as the pool does (stopping at every 256-spacing word of the tick bitmap, as the
    contract does, since each step rounds). Without them (``None``) the liquidity is only known
    inside the tick-spacing interval holding the price: a swap staying strictly inside it is
    still exact; one reaching its edge raises ``PoolMathError("range_exceeded")``.
    ``pipeline.ops.v3.v3_pool(state)`` builds one from a ``PoolState``. Validation and swaps
    run without the GIL.

    Raises:
        InvalidV3PoolError: see its codes.
        TypeError: a non-int field, or a ``ticks`` item that is not a 2-tuple.
    """

    def __init__(
        self,
        sqrt_price_x96: SupportsIndex,
        liquidity: SupportsIndex,
        tick: SupportsIndex,
        tick_spacing: SupportsIndex,
        fee: SupportsIndex,
        ticks: Iterable[tuple[SupportsIndex, SupportsIndex]] | None = None,
    ) -> None: ...
    @property
    def sqrt_price_x96(self) -> int:
        """Price, ``sqrt(token1/token0)`` in Q64.96."""
    @property
    def liquidity(self) -> int:
        """Active liquidity."""
    @property
    def tick(self) -> int:
        """Current tick (``slot0.tick``)."""
    @property
    def tick_spacing(self) -> int:
        """Tick spacing (1, 10, 60, 200 for fees 100, 500, 3000, 10000)."""
    @property
    def fee(self) -> int:
        """Fee in hundredths of a basis point."""
    @property
    def ticks(self) -> tuple[tuple[int, int], ...] | None:
        """The initialised ticks as ``(tick, liquidity_net)``, or ``None`` without tick data."""
    def swap_exact_in(
        self,
        zero_for_one: bool,
        amount_in: SupportsIndex,
        sqrt_price_limit_x96: SupportsIndex | None = None,
    ) -> V3SwapResult:
        """Swap exactly ``amount_in`` (token0 if ``zero_for_one``), stopping at the limit.

        The limit defaults to ``MIN_SQRT_RATIO + 1`` going down and ``MAX_SQRT_RATIO - 1``
        going up (QuoterV2's and the router's default). ``amount_in=0`` does nothing (the
        contract would revert ``AS``).

        Raises:
            PoolMathError: ``out_of_range`` (amount outside ``0..=2**255-1``, limit outside
                ``uint160``), ``price_limit`` (the contract's ``SPL``: the limit is not
                strictly between the price and the bound), ``range_exceeded`` (no tick data),
                ``overflow`` (where the contract reverts on arithmetic).
            TypeError: ``zero_for_one`` is not a bool.
        """
    def swap_exact_out(
        self,
        zero_for_one: bool,
        amount_out: SupportsIndex,
        sqrt_price_limit_x96: SupportsIndex | None = None,
    ) -> V3SwapResult:
        """Swap for exactly ``amount_out`` (token1 if ``zero_for_one``); as
        :meth:`swap_exact_in`, ``amount_in_used`` is the input needed, fee included."""

def v3_amount_out(pool: V3Pool, zero_for_one: bool, amount_in: SupportsIndex) -> int:
    """Output of spending exactly ``amount_in``: ``pool.swap_exact_in(...).amount_out``,
    QuoterV2's ``quoteExactInputSingle`` (default price limit).

    >>> pool = V3Pool(2**96, 10**18, 0, 60, 3000, ((-600, 10**18), (600, -10**18)))
    >>> v3_amount_out(pool, True, 10**15)
    996006981039903

    Raises:
        PoolMathError: as :meth:`V3Pool.swap_exact_in`, and ``insufficient_liquidity`` when
            the pool cannot take all of ``amount_in``.
    """

def v3_amount_in(pool: V3Pool, zero_for_one: bool, amount_out: SupportsIndex) -> int:
    """Input (fee included) needed to receive exactly ``amount_out``: QuoterV2's
    ``quoteExactOutputSingle``.

    Raises:
        PoolMathError: as :meth:`V3Pool.swap_exact_out`, and ``insufficient_liquidity`` when
            the pool cannot pay all of ``amount_out`` (QuoterV2 reverts there).
    """

def sqrt_ratio_at_tick(tick: SupportsIndex) -> int:
    """``TickMath.getSqrtRatioAtTick``: ``sqrt(1.0001**tick) * 2**96``, rounded up.

    >>> sqrt_ratio_at_tick(0) == 2**96
    True

    Raises:
        PoolMathError: ``out_of_range`` outside ``MIN_TICK..=MAX_TICK``.
    """

def tick_at_sqrt_ratio(sqrt_price_x96: SupportsIndex) -> int:
    """``TickMath.getTickAtSqrtRatio``: the greatest tick whose ratio is at or below the price.

    Raises:
        PoolMathError: ``out_of_range`` outside ``MIN_SQRT_RATIO..MAX_SQRT_RATIO``.
    """

# --- order books (rust_ops/src/books) ------------------------------------------------------
#
# Units, all exact ints: a price is a count of price ticks, ``1..=2**64-1`` (the tick's value,
# e.g. 0.01 USDC per ETH, is the caller's convention and must be the same for every book
# aggregated together); a size or quantity is in integer base units, ``1..=2**128-1``; a
# notional is ``Σ price·qty`` in tick·base units; a venue's fee is in hundredths of a basis
# point (``3000`` = 0.30 %). Convert human Decimals at the caller's boundary:
# ``int(price / tick)`` and ``int(size * 10**decimals)``, choosing the rounding there.

class InvalidBookError(RustOpsError):
    """A venue's book, or a set of books, that cannot be used. ``venue`` names the venue.

    Codes, in the order checked by :class:`Book`: ``out_of_range`` (each bid level's price then
    size, then each ask level's, then the fee; a price outside ``0..=2**64-1``, a size or fee
    outside ``0..=2**128-1``), then over the bids and then the asks, level by level,
    ``zero_price``, ``zero_size``, ``duplicate_price`` (a price repeated on one side),
    ``unsorted_levels`` (bids not strictly decreasing, asks not strictly increasing), then
    ``fee_out_of_range`` (``fee >= 1_000_000``) and ``crossed_book`` (best bid at or above best
    ask). By :func:`aggregate_books`: ``duplicate_venue`` (two books of one venue; the smallest
    such name is reported), ``size_overflow`` (the total size at one price exceeds
    ``2**128-1``).
    """

    venue: str
    """The venue the error is about."""

class SweepError(RustOpsError):
    """A sweep that cannot be carried out as asked.

    Codes, in the order checked: ``unknown_side`` (not exactly ``"buy"`` or ``"sell"``),
    ``out_of_range`` (``qty`` outside ``0..=2**128-1``), ``zero_quantity``.
    """

@final
class Book:
    """One venue's L2 book, validated, immutable, hashable, equal by value.

    ``bids`` and ``asks`` are ``(price, size)`` tuples, best first: bids strictly decreasing,
    asks strictly increasing; either side may be empty. ``fee`` is the venue's taker fee in
    hundredths of a basis point.

    >>> Book("a", [(99, 5), (98, 7)], [(101, 3)], fee=3000)
    Book(venue='a', bids=((99, 5), (98, 7)), asks=((101, 3),), fee=3000)

    Raises:
        InvalidBookError: see its codes.
        TypeError: a non-str venue, a level that is not a 2-tuple, a non-int price, size or fee.
    """

    def __init__(
        self,
        venue: str,
        bids: Iterable[tuple[SupportsIndex, SupportsIndex]],
        asks: Iterable[tuple[SupportsIndex, SupportsIndex]],
        fee: SupportsIndex = 0,
    ) -> None: ...
    @property
    def venue(self) -> str:
        """The venue's name, unique within an aggregation."""
    @property
    def bids(self) -> tuple[tuple[int, int], ...]:
        """Bid levels ``(price, size)``, highest price first."""
    @property
    def asks(self) -> tuple[tuple[int, int], ...]:
        """Ask levels ``(price, size)``, lowest price first."""
    @property
    def fee(self) -> int:
        """Taker fee, hundredths of a basis point."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ConsolidatedBook:
    """Per-venue books merged by price; made by :func:`aggregate_books`. Immutable, hashable.

    ``venues`` are ordered by ``(fee, venue)``, cheapest first: within a level, the parts follow
    that order, which is the order :func:`sweep` fills them in. The consolidated book may be
    crossed (one venue's bid above another's ask): that is a market fact, not an error. It
    keeps the books it was made from and refers to their levels (it does not copy the sizes).
    """

    @property
    def venues(self) -> tuple[str, ...]:
        """Venue names in fill order, ``(fee, venue)`` ascending."""
    @property
    def fees(self) -> tuple[int, ...]:
        """Each venue's fee, parallel to :attr:`venues`."""
    @property
    def bids(self) -> tuple[tuple[int, int, tuple[tuple[str, int], ...]], ...]:
        """``(price, total_size, ((venue, size), ...))``, highest price first. Built on each
        access: keep the tuple if you read it more than once."""
    @property
    def asks(self) -> tuple[tuple[int, int, tuple[tuple[str, int], ...]], ...]:
        """As :attr:`bids`, lowest price first."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Sweep:
    """What :func:`sweep` took, level by level and venue by venue. Immutable, hashable."""

    @property
    def side(self) -> str:
        """``"buy"`` (took the asks) or ``"sell"`` (took the bids)."""
    @property
    def requested_qty(self) -> int:
        """The quantity asked for."""
    @property
    def filled_qty(self) -> int:
        """``min(requested_qty, depth of the side swept)``."""
    @property
    def notional(self) -> int:
        """``Σ price·qty`` over the fills, fees excluded (tick·base units)."""
    @property
    def fees(self) -> int:
        """Sum of the venues' fees (see :attr:`venue_fills`), in notional units."""
    @property
    def avg_price(self) -> int | None:
        """``notional / filled_qty`` rounded against the taker: up for a buy, down for a sell
        (the exact value is ``notional / filled_qty``). ``None`` if nothing was filled."""
    @property
    def worst_price(self) -> int | None:
        """Price of the last level touched; ``None`` if nothing was filled."""
    @property
    def fills(self) -> tuple[tuple[int, int, str], ...]:
        """``(price, qty, venue)``, best price first, within a price in the book's venue
        order."""
    @property
    def venue_fills(self) -> tuple[tuple[str, int, int, int], ...]:
        """``(venue, qty, notional, fee)`` per venue that filled anything, in the book's venue
        order; ``fee = ceil(notional * venue_fee / 1_000_000)``, rounded up (the venue's
        favour), once per venue per sweep."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def aggregate_books(books: Iterable[Book]) -> ConsolidatedBook:
    """Merge per-venue books into one consolidated book that remembers, at each price, how much
    each venue quotes. No books give an empty book. Runs without the GIL.

    >>> c = aggregate_books([Book("a", [], [(101, 3)], 3000), Book("b", [], [(101, 2)])])
    >>> c.asks
    ((101, 5, (('b', 2), ('a', 3))),)

    Raises:
        InvalidBookError: ``duplicate_venue``, ``size_overflow`` (bids merged before asks).
        TypeError: an item that is not a :class:`Book`.
    """

def sweep(book: ConsolidatedBook, side: str, qty: SupportsIndex) -> Sweep:
    """Take up to ``qty`` from ``book``: a ``"buy"`` takes the asks, lowest price first, a
    ``"sell"`` the bids, highest first; within a price, venues in the book's order (cheapest
    fee first). Asking for more than the book holds fills what there is (``filled_qty <
    requested_qty``). Fees do not change the order. Runs without the GIL.

    Raises:
        SweepError: ``unknown_side``, ``out_of_range``, ``zero_quantity``.
        TypeError: ``book`` is not a :class:`ConsolidatedBook`, a non-str side, a non-int qty.
    """

@final
class WaterFill:
    """How :func:`water_fill` split one order between a book's venues and a pool curve.
    Frozen, hashable, equal by value."""

    @property
    def side(self) -> str:
        """``"buy"`` or ``"sell"``."""
    @property
    def requested_qty(self) -> int:
        """The quantity asked for (base units)."""
    @property
    def filled_qty(self) -> int:
        """What the book and the pool hold of it together, at most ``requested_qty``."""
    @property
    def pool_qty(self) -> int:
        """The pool's share."""
    @property
    def venue_fills(self) -> tuple[tuple[str, int], ...]:
        """Each book venue's share ``(venue, qty)``, in the book's venue order, zeros left out."""
    @property
    def pool_levels(self) -> tuple[tuple[int, int], ...]:
        """The pool curve as levels ``(price, size)``, best first."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def water_fill(
    book: ConsolidatedBook,
    side: str,
    qty: SupportsIndex,
    curve: Iterable[tuple[SupportsIndex, SupportsIndex]],
    price_num: SupportsIndex,
    price_den: SupportsIndex,
) -> WaterFill:
    """Fill up to ``qty`` across ``book`` and a pool by marginal price (water-filling).

    ``curve`` is the pool's cost curve, sampled by the caller: points ``(x, c)``, ``x`` base
    units increasing, ``c`` the quote base units paid for them (a buy) or received (a sell).
    Each segment's marginal price ``Δc / Δx``, times ``price_num / price_den`` (quote base
    units per base unit -> the book's price units), rounded against the taker (a buy's up,
    a sell's down), becomes a pool level; levels are made monotone (never better than the one
    before), equal prices merged, a price of 0 ends them, a price beyond ``2**64-1`` is held
    at it; a point whose ``x`` is not beyond the last is skipped. The book's levels and the
    pool's are then taken best first, like :func:`sweep` with the pool as one more venue
    placed last at a price. Runs without the GIL.

    Raises:
        SweepError: ``unknown_side``, ``out_of_range`` (``qty``, a curve value, ``price_num``
            or ``price_den`` outside its range, 0 for the last two), ``zero_quantity``.
        TypeError: a wrong type, or a curve point that is not an ``(x, c)`` tuple.
    """

# --- route graph (rust_ops/src/graph) ------------------------------------------------------

MAX_SPLITS: int
"""Most parallel paths a ``RouteGraph`` route may be split across (8)."""
GAS_BASE: int
"""Gas of a route, once (21000): the transaction's base cost."""
GAS_CP_HOP: int
"""Gas of a constant-product leg (60000)."""
GAS_V3_HOP: int
"""Gas of a V3 leg before tick crossings (100000)."""
GAS_V3_TICK: int
"""Gas of each initialised tick a V3 leg crosses (25000)."""

class GraphLeg:
    """One hop of a :class:`GraphRoute` path. Frozen, hashable, equal by value."""

    @property
    def pool_id(self) -> str:
        """Pool traded against."""
    @property
    def venue(self) -> str:
        """Venue owning the pool."""
    @property
    def kind(self) -> str:
        """``"constant_product"`` or ``"concentrated"`` (V3), as ``PoolState.kind``."""
    @property
    def token_in(self) -> str:
        """Token paid in."""
    @property
    def token_out(self) -> str:
        """Token taken out."""
    @property
    def zero_for_one(self) -> bool:
        """Whether ``token_in`` is the pool's token0."""
    @property
    def amount_in(self) -> int:
        """Amount of ``token_in``, base units."""
    @property
    def amount_out(self) -> int:
        """Amount of ``token_out``, base units."""
    @property
    def ticks_crossed(self) -> int:
        """Initialised ticks crossed (0 for a constant-product pool)."""
    @property
    def gas(self) -> int:
        """``GAS_CP_HOP``, or ``GAS_V3_HOP + GAS_V3_TICK * ticks_crossed``."""
    @property
    def fee(self) -> int:
        """The pool's fee, hundredths of a basis point."""

class GraphPath:
    """One path of a :class:`GraphRoute`. Frozen, hashable, equal by value."""

    @property
    def legs(self) -> tuple[GraphLeg, ...]:
        """The hops in trading order."""
    @property
    def amount_in(self) -> int:
        """Spent at the first leg."""
    @property
    def amount_out(self) -> int:
        """Received from the last leg."""
    @property
    def mid_price_num(self) -> int:
        """Numerator of the fee-free mid price (``token_out`` per ``token_in``), lowest terms:
        the product of the legs' spot prices, ``reserve_out/reserve_in`` for a constant-product
        pool, ``sqrt_price_x96**2 / 2**192`` (inverted for token1 -> token0) for a V3 pool."""
    @property
    def mid_price_den(self) -> int:
        """Denominator of the mid price."""
    @property
    def price_impact_ppm(self) -> int:
        """Executed rate against the mid rate, ppm worse, rounded down, floored at 0."""
    @property
    def gas(self) -> int:
        """Sum of the legs' gas."""

class GraphRoute:
    """The answer of :class:`RouteGraph`: one path, or several pool-disjoint paths in parallel.
    Frozen, hashable, equal by value."""

    @property
    def paths(self) -> tuple[GraphPath, ...]:
        """The paths, best-ranked first (their amounts add up to the totals)."""
    @property
    def amount_in(self) -> int:
        """Total spent."""
    @property
    def amount_out(self) -> int:
        """Total received."""
    @property
    def mid_price_num(self) -> int:
        """Mid price of the first path (numerator)."""
    @property
    def mid_price_den(self) -> int:
        """Mid price of the first path (denominator)."""
    @property
    def price_impact_ppm(self) -> int:
        """The totals against that mid price, ppm worse, floored at 0."""
    @property
    def gas(self) -> int:
        """``GAS_BASE`` plus every path's gas."""

class RouteGraph:
    """A live route graph of one chain: tokens are nodes, pools (constant-product and exact
    Uniswap V3) are edges. Mutable: a new pool state replaces the old one in place (a hash
    lookup when the tokens are unchanged); answers never depend on insertion order.

    Search: every simple path of at most ``max_hops`` legs (no token, hence no pool, twice),
    quoted exactly. A leg that cannot quote the amount (zero reserve, a V3 swap leaving its
    known tick range, liquidity running out, zero output) only rules that path out. Paths rank
    by value, ``amount_out - gas_price*gas`` (exact-in) or ``-(amount_in + gas_price*gas)``
    (exact-out), then fewer hops, then smaller pool-id sequence.

    Splits (``max_splits > 1``): paths are ranked for an even share ``amount // max_splits``
    and taken greedily while pool-disjoint; the amount is cut into 20 chunks, each given to
    the path whose value grows most by taking it (its whole share re-quoted, gas charged on
    first use). The split is returned only if it uses two paths or more and beats the best
    single route after gas (or no single route can carry the amount).

    Gas model (gas units): ``GAS_BASE`` once, plus ``GAS_CP_HOP`` per constant-product leg or
    ``GAS_V3_HOP + GAS_V3_TICK * ticks_crossed`` per V3 leg. Queries run without the GIL.
    """

    def __init__(self, chain_id: SupportsIndex = 0) -> None: ...
    @property
    def chain_id(self) -> int:
        """The chain the graph describes."""
    def update_cp_pool(
        self,
        pool_id: str,
        venue: str,
        token0: str,
        token1: str,
        reserve0: SupportsIndex,
        reserve1: SupportsIndex,
        fee: SupportsIndex,
    ) -> None:
        """Adds or replaces a constant-product pool (checked as :class:`Pool`).

        Raises:
            InvalidPoolError: ``out_of_range``, ``fee_out_of_range``, ``same_token``.
        """
    def update_v3_pool(
        self, pool_id: str, venue: str, token0: str, token1: str, pool: V3Pool
    ) -> None:
        """Adds or replaces a Uniswap V3 pool between ``token0`` and ``token1``.

        Raises:
            InvalidPoolError: ``same_token``.
            TypeError: ``pool`` is not a :class:`V3Pool`.
        """
    def update_pool(self, pool: Pool) -> None:
        """Adds or replaces a constant-product pool given as a :class:`Pool`."""
    def remove_pool(self, pool_id: str) -> bool:
        """Removes the pool; whether there was one."""
    def best_route(
        self,
        token_in: str,
        token_out: str,
        amount_in: SupportsIndex,
        max_hops: SupportsIndex = 3,
        max_splits: SupportsIndex = 1,
        gas_price: SupportsIndex | None = None,
    ) -> GraphRoute | None:
        """The route spending exactly ``amount_in`` worth the most ``token_out`` after gas.

        ``gas_price`` is in ``token_out`` base units per gas unit (``None``/0 ignores gas).

        Returns:
            The route, or ``None`` when no path (unknown tokens included) can carry the amount.

        Raises:
            RouteQueryError: ``out_of_range`` (amount, gas_price), ``max_hops_out_of_range``
                (1..=MAX_HOPS), ``max_splits_out_of_range`` (1..=MAX_SPLITS), ``same_token``,
                ``zero_amount``, checked in that order.
        """
    def best_route_exact_out(
        self,
        token_in: str,
        token_out: str,
        amount_out: SupportsIndex,
        max_hops: SupportsIndex = 3,
        max_splits: SupportsIndex = 1,
        gas_price: SupportsIndex | None = None,
    ) -> GraphRoute | None:
        """The route receiving exactly ``amount_out`` that costs the least ``token_in`` after gas
        (``gas_price`` in ``token_in`` base units per gas unit); each leg's input is the least
        that yields the next leg's input. Otherwise as :meth:`best_route`."""
    def __len__(self) -> int: ...
    def __contains__(self, pool_id: str) -> bool: ...

def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` on a topic of ``partitions``
    partitions: ``(murmur2(key) & 0x7fffffff) % partitions``, as the Java client and aiokafka
    compute it (``partitions`` of 0 counts as 1).  ~50x aiokafka's pure-Python hash."""

FetchedPartition = tuple[int, int, int, int, int, list[tuple[int, int]] | None, int, bytes | None]
"""``(partition, error_code, high_watermark, last_stable_offset, log_start_offset,
aborted_transactions, preferred_read_replica, records)``, as aiokafka's
``FetchResponse_v11`` holds a partition (``None`` where the response says null)."""

def decode_fetch_v11(
    data: bytes, keep_empty: bool = False
) -> tuple[int, int, int, list[tuple[str, list[FetchedPartition]]]]:
    """A Kafka ``FetchResponse`` v11 body (after the response header) as
    ``(throttle_time_ms, error_code, session_id, topics)``, the fields of aiokafka's
    ``FetchResponse_v11`` in its order.  Without ``keep_empty``, a partition with no records,
    no error and no aborted transactions is left out, and a topic left with none too: a
    consumer has nothing to do with them.  One pass over the bytes (~10x aiokafka's parse of a
    worker's 28-partition response).  Raises ``ValueError`` on a truncated or overlong body."""
