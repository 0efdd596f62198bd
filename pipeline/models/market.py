"""Market state that venues expose to the planner."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

from pipeline.models.base import Amount, BaseUnits, WireModel

# Signed integer amounts (a tick's liquidityNet) exceed 64 bits too: strings on the wire.
SignedUnits = Annotated[int, PlainSerializer(lambda n: str(n), return_type=str, when_used="json")]


class TickLiquidity(WireModel):
    """An initialised tick of a concentrated-liquidity pool: crossing it upwards adds
    ``liquidity_net`` to the active liquidity (downwards subtracts it)."""

    tick: int
    liquidity_net: SignedUnits


class PoolState(WireModel):
    """A constant-product pool as the router sees it. Reserves in integer base units.

    ``token0``/``token1`` are asset symbols from the asset registry; ``fee`` is in hundredths
    of a basis point, as Uniswap counts it (3000 = 0.30 %).

    A Uniswap V3 pool (``kind="concentrated"``) reports the *virtual* reserves of its active
    liquidity (``L / sqrtP`` and ``L * sqrtP``): a constant-product router gets the right spot
    price and the depth near it. The optional V3 fields carry the exact state for V3 math:
    ``sqrt_price_x96``, ``liquidity``, ``tick``, ``tick_spacing`` and every initialised tick
    with its ``liquidity_net``, sorted by tick; ``block`` is the block they were read at.

    ``version`` says which trades a state includes, so a planner can tell when its own trade
    has reached the state it plans on (``pipeline.stages.pending_flow``): a trade reported
    as landed at ``v`` (``ExecStepFilled.landed_at``) is in every state of its pools whose
    ``version >= v``.  A chain's version is the ``block`` the state was read at; a venue
    without blocks numbers its trades and sets ``seq`` to the last one that moved this pool
    (the sim venue's ledger).
    """

    pool_id: str
    venue: str
    kind: Literal["constant_product", "concentrated"] = "constant_product"
    chain_id: int
    token0: str
    token1: str
    reserve0: BaseUnits
    reserve1: BaseUnits
    fee: Annotated[int, Field(ge=0, lt=1_000_000)]
    sqrt_price_x96: BaseUnits | None = None
    liquidity: BaseUnits | None = None
    tick: int | None = None
    tick_spacing: Annotated[int, Field(gt=0)] | None = None
    ticks: tuple[TickLiquidity, ...] | None = None
    block: int | None = None
    seq: Annotated[int, Field(ge=0)] | None = None

    @property
    def version(self) -> int | None:
        """``seq`` if the venue numbers its trades, else ``block``; ``None``: unknown."""
        return self.seq if self.seq is not None else self.block


# --- order books (sep.market.books) -------------------------------------------------------
#
# A book venue publishes, per market, a ``BookSnapshot`` (every level) and then ``BookDelta``s
# (only the levels that changed).  Prices are human Decimals (quote per one base), sizes human
# Decimals of the base asset: venues differ in tick and lot sizes, so the consumer chooses the
# common integer units it aggregates in (``pipeline.ops.Book`` takes ints).
#
# Sequencing, per (venue, market_id): ``seq`` is the book's version, which only grows.  A
# snapshot is the whole book at ``seq``; a delta takes a book from version ``from_seq`` to
# ``seq`` and carries the *new* size of every level that changed in between (size 0: the
# level is gone).  Because a delta sets sizes rather than adding to them, a replica at version
# ``s`` applies it whenever ``from_seq <= s < seq``; ``seq <= s`` is a duplicate (ignore it);
# ``from_seq > s`` is a gap: drop the book and wait for the next snapshot (a resync).
# ``plugins.clob_venue.books.BookReplica`` implements those rules.


class BookLevel(WireModel):
    """One price level: the total size resting at ``price`` (0 in a delta: removed)."""

    price: Amount
    size: Amount


class BookSnapshot(WireModel):
    """Every level of one market's book at version ``seq``, best first on each side."""

    kind: Literal["snapshot"] = "snapshot"
    venue: str
    market_id: str
    chain_id: int
    base: str
    """Symbol of the asset traded (sizes are in it)."""
    quote: str
    """Symbol of the asset prices are in."""
    tick_size: Amount
    lot_size: Amount
    maker_fee: int
    """Hundredths of a basis point (negative: a rebate)."""
    taker_fee: Annotated[int, Field(ge=0, lt=1_000_000)]
    seq: Annotated[int, Field(ge=0)]
    bids: tuple[BookLevel, ...]
    """Highest price first."""
    asks: tuple[BookLevel, ...]
    """Lowest price first."""
    timestamp_ms: int


class BookDelta(WireModel):
    """The levels of one market's book that changed from version ``from_seq`` to ``seq``."""

    kind: Literal["delta"] = "delta"
    venue: str
    market_id: str
    from_seq: Annotated[int, Field(ge=0)]
    seq: Annotated[int, Field(ge=1)]
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()
    timestamp_ms: int


BookMessage = Annotated[BookSnapshot | BookDelta, Field(discriminator="kind")]
"""What ``sep.market.books`` carries, keyed ``venue/market_id``."""
