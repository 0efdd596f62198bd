"""Dollar-cost averaging: spend a fixed amount of the quote asset on an asset every interval.

Pure logic over the runner's clock (``MarketSnapshot.at_ms``): prices do not matter to it by
design -- buying the same quote amount whatever the price is what averages the cost.

    at_ms --(at_ms - start_ms) // interval_ms--> interval index k
          --k newer than the last one bought--> DISPOSE ``amount`` quote for the asset,
                                                 client intent id "<strategy id>-<k>"

The intent is a DISPOSE of the quote asset (sell exactly ``amount`` USDC, receive WETH), not
an ACQUIRE of the asset: DCA fixes what is spent, and an ACQUIRE fixes what is received.

One buy per interval, at the first update inside it; intervals with no update (the runner
was down, the market quiet) are skipped, not caught up: several buys at once would be the
lump sum DCA is meant to avoid.  The client intent id depends only on (strategy id, k), so a
restarted runner that buys interval k again submits the same id and ingest's dedupe on
(strategy id, client intent id) drops it: nothing is bought twice.  Its state (the last
interval bought and the totals) is saved by the runner (``KeepsState``), so a restarted
runner does not even re-submit, and the totals go on from where they were.

A reconfigured strategy is a new instance restored from the old one's state, and a new
``interval_ms`` or ``start_ms`` counts intervals on another scale: the state keeps the moment
of the last buy and the scale it was counted on, and the last interval bought is counted
again on the new scale (the one holding that moment), so a longer interval goes on buying
and a shorter one does not buy twice in the interval of the last buy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pipeline.models.assets import AssetSpec
from pipeline.models.intent import IntentConstraints, IntentSubmission, IntentType
from pipeline.plugins.strategy import JsonState, MarketSnapshot, StrategyContext, StrategyFill
from plugins.strategies.dca.config import DcaConfig


def client_intent_id(strategy_id: str, index: int) -> str:
    """The buy of interval ``index``: the same in every process that runs the strategy."""
    return f"{strategy_id}-{index}"


@dataclass
class DcaTotals:
    """What the strategy's fills add up to (for its own accounting and the UI)."""

    spent: Decimal = Decimal(0)
    """Of the quote asset."""
    bought: Decimal = Decimal(0)
    """Of the asset."""
    fills: int = 0

    @property
    def average_price(self) -> Decimal | None:
        return self.spent / self.bought if self.bought else None


class Dca:
    """The strategy: one ``DISPOSE quote -> asset`` per interval."""

    def __init__(self, config: DcaConfig, context: StrategyContext) -> None:
        self.config = config
        self.strategy_id = context.strategy_id
        self._quote = context.assets[config.quote]
        self._asset = context.assets[config.asset]
        self._constraints = IntentConstraints(
            max_slippage=config.max_slippage,
            time_window_ms=config.time_window_ms,
            allowed_venues=config.allowed_venues,
        )
        self.last_index: int | None = None
        """The last interval bought (``None``: none since this process started)."""
        self.last_at_ms: int | None = None
        """The moment (the runner's clock) of that buy."""
        self.totals = DcaTotals()

    def interval_index(self, at_ms: int) -> int | None:
        """The interval ``at_ms`` falls in; ``None`` before the first or after the last."""
        if at_ms < self.config.start_ms:
            return None
        index = (at_ms - self.config.start_ms) // self.config.interval_ms
        if self.config.max_buys is not None and index >= self.config.max_buys:
            return None
        return index

    async def on_start(self) -> None:
        return None

    def on_market(self, snapshot: MarketSnapshot) -> Sequence[IntentSubmission]:
        index = self.interval_index(snapshot.at_ms)
        if index is None or (self.last_index is not None and index <= self.last_index):
            return []
        self.last_index, self.last_at_ms = index, snapshot.at_ms
        return [self.buy(index)]

    def buy(self, index: int) -> IntentSubmission:
        """The intent of interval ``index``."""
        return IntentSubmission(
            strategy_id=self.strategy_id,
            client_intent_id=client_intent_id(self.strategy_id, index),
            type=IntentType.DISPOSE,
            assets=(
                AssetSpec(asset=self._quote, amount=self.config.amount),
                AssetSpec(asset=self._asset),
            ),
            constraints=self._constraints,
        )

    def on_fill(self, fill: StrategyFill) -> None:
        step = fill.fill
        if step.asset_in != self._quote.symbol or step.asset_out != self._asset.symbol:
            return  # not one of its buys (a strategy sees only its own fills, but be sure)
        self.totals.spent += step.amount_in
        self.totals.bought += step.amount_out
        self.totals.fills += 1

    async def on_stop(self) -> None:
        return None

    # -- KeepsState: the runner saves this after every batch and restores it on a restart

    def save_state(self) -> JsonState:
        return {
            "last_index": self.last_index,
            "last_at_ms": self.last_at_ms,
            "interval_ms": self.config.interval_ms,
            "start_ms": self.config.start_ms,
            "spent": str(self.totals.spent),
            "bought": str(self.totals.bought),
            "fills": self.totals.fills,
        }

    def restore_state(self, state: JsonState) -> None:
        try:
            last = state["last_index"]
            totals = DcaTotals(
                Decimal(state["spent"]), Decimal(state["bought"]), int(state["fills"])
            )
            # Absent from a state saved before they were kept: the same scale, then.
            last_at = state.get("last_at_ms")
            scale = (
                state.get("interval_ms", self.config.interval_ms),
                state.get("start_ms", self.config.start_ms),
            )
        except (KeyError, TypeError, ArithmeticError, AttributeError) as exc:
            raise ValueError(f"not a dca state: {state!r}") from exc
        for name, value in (("last_index", last), ("last_at_ms", last_at)):
            if value is not None and not isinstance(value, int):
                raise ValueError(f"{name} must be an integer or null, got {value!r}")
        if scale != (self.config.interval_ms, self.config.start_ms):
            # Counted on another scale: the interval of the last buy on this one.
            at = last_at if last_at is not None else self._moment(last, *scale)
            last = None if at is None or at < self.config.start_ms else self._index(at)
        self.last_index, self.last_at_ms, self.totals = last, last_at, totals

    def _index(self, at_ms: int) -> int:
        return (at_ms - self.config.start_ms) // self.config.interval_ms

    @staticmethod
    def _moment(index: int | None, interval_ms: object, start_ms: object) -> int | None:
        """The start of interval ``index`` on a saved scale (a state without the moment)."""
        if index is None or not isinstance(interval_ms, int) or not isinstance(start_ms, int):
            return None
        return start_ms + index * interval_ms
