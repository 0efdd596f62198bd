"""Momentum with a learned signal: bars of one pool's price, features, an ONNX model, intents
sized by the signal's strength within a budget.

    pool state (snapshot) --spot price of asset in quote--> the bar's close (last price in it)
    a bar closes --features.features(last 31 closes)--> 6 floats --SignalModel--> P(up)
    P(up) >= buy_above   --decide--> DISPOSE quote for asset, notional = budget * strength,
                                     strength = (P - buy_above) / (1 - buy_above), capped by
                                     max_position - position
    P(up) <= sell_below  --decide--> DISPOSE asset for quote, up to the position held,
                                     worth budget * (sell_below - P) / sell_below
    else, or within cooldown_bars of its last intent, or under min_notional --> nothing

The client intent id is ``<strategy id>-<bar index>``: a bar is decided once, and a runner
replaying it after a crash submits the same id (ingest's dedupe drops it).  The intent's
``mlFeatures`` carry the features, the signal and the model version (as the key
``model:<version>`` with value 1: ``mlFeatures`` holds numbers only).  The position is what
its fills add up to (bought minus sold); intents not filled yet do not count, which the
cooldown covers.  Bars with no update (a quiet or stopped runner) repeat the last close, as
the model saw flat prices in training; after a gap longer than the features' window it
starts its history afresh.

A reconfigured strategy is a new instance restored from the old one's state.  The state
names what it was counted in: closes of another ``bar_ms`` are not the bars the model reads,
so the history starts afresh (and the cooldown's bar is counted again in the new length);
a position in another ``asset``/``quote`` is not one in these, so it starts from nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from pipeline.models.assets import Asset, AssetSpec
from pipeline.models.intent import IntentConstraints, IntentSubmission, IntentType
from pipeline.models.market import PoolState
from pipeline.plugins.strategy import JsonState, MarketSnapshot, StrategyContext, StrategyFill
from plugins.strategies.momentum.config import MomentumConfig
from plugins.strategies.momentum.features import BARS_NEEDED, FEATURE_NAMES, features
from plugins.strategies.momentum.model import SignalModel


@dataclass(frozen=True)
class Decision:
    side: Literal["buy", "sell"]
    amount: Decimal
    """buy: ``quote`` to spend; sell: ``asset`` to sell (human units, exact to decimals)."""
    strength: Decimal


def decide(
    config: MomentumConfig,
    probability: float,
    position: Decimal,
    price: Decimal,
    quote: Asset,
    asset: Asset,
) -> Decision | None:
    """What one signal means for a holder of ``position`` at ``price`` (pure)."""
    p = Decimal(str(probability))
    if p >= config.buy_above:
        strength = (p - config.buy_above) / (1 - config.buy_above)
        room = max(Decimal(0), config.max_position - position) * price
        notional = _down(min(config.budget * strength, room), quote.decimals)
        if notional <= 0 or notional < config.min_notional:
            return None
        return Decision("buy", notional, strength)
    if p <= config.sell_below and position > 0:
        strength = (config.sell_below - p) / config.sell_below
        amount = _down(min(position, config.budget * strength / price), asset.decimals)
        if amount <= 0 or amount * price < config.min_notional:
            return None
        return Decision("sell", amount, strength)
    return None


def _down(amount: Decimal, decimals: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)


def spot_price(pool: PoolState, asset: Asset, quote: Asset) -> Decimal | None:
    """``asset`` in ``quote`` from a pool's (virtual) reserves; ``None`` if empty."""
    if (pool.token0, pool.token1) == (asset.symbol, quote.symbol):
        r_asset, r_quote = pool.reserve0, pool.reserve1
    elif (pool.token0, pool.token1) == (quote.symbol, asset.symbol):
        r_asset, r_quote = pool.reserve1, pool.reserve0
    else:
        return None
    if r_asset <= 0 or r_quote <= 0:
        return None
    return (Decimal(r_quote).scaleb(-quote.decimals)) / (Decimal(r_asset).scaleb(-asset.decimals))


class Momentum:
    def __init__(
        self, config: MomentumConfig, context: StrategyContext, model: SignalModel | None = None
    ) -> None:
        self.config = config
        self.strategy_id = context.strategy_id
        self._asset = context.assets[config.asset]
        self._quote = context.assets[config.quote]
        self._constraints = IntentConstraints(
            max_slippage=config.max_slippage,
            time_window_ms=config.time_window_ms,
            allowed_venues=config.allowed_venues,
        )
        self.model = model
        self.closes: deque[float] = deque(maxlen=BARS_NEEDED)
        self.bar: int | None = None
        self.bar_close: Decimal | None = None
        self.position = Decimal(0)
        self.last_intent_bar: int | None = None
        self.last_signal: float | None = None

    async def on_start(self) -> None:
        if self.model is None:
            self.model = SignalModel()

    async def on_stop(self) -> None:
        return None

    # ------------------------------------------------------------------ market

    def price(self, snapshot: MarketSnapshot) -> Decimal | None:
        pools = [
            p
            for p in snapshot.pools.get(self.config.venue, ())
            if self.config.pool_id is None or p.pool_id == self.config.pool_id
        ]
        priced = [
            (pool, price)
            for pool in pools
            if (price := spot_price(pool, self._asset, self._quote)) is not None
        ]
        if not priced:
            return None
        # The deepest pool: the most quote at its price (its price moves least per trade).
        _pool, price = max(priced, key=lambda pp: _quote_depth(pp[0], self._quote))
        return price

    def on_market(self, snapshot: MarketSnapshot) -> Sequence[IntentSubmission]:
        price = self.price(snapshot)
        if price is None:
            return []
        bar = snapshot.at_ms // self.config.bar_ms
        if self.bar is None or self.bar_close is None:
            self.bar, self.bar_close = bar, price
            return []
        if bar < self.bar:
            return []  # an update older than the bar it is in: already past
        if bar == self.bar:
            self.bar_close = price
            return []
        closed, close = self.bar, self.bar_close
        gap = bar - closed
        if gap > BARS_NEEDED:
            self.closes.clear()  # too long a gap: the features would be of a market long gone
        self.closes.append(float(close))
        for _ in range(min(gap - 1, BARS_NEEDED)):
            self.closes.append(float(close))  # bars nobody saw: flat
        self.bar, self.bar_close = bar, price
        return self._decide(closed + gap - 1, close)

    def _decide(self, bar: int, price: Decimal) -> list[IntentSubmission]:
        x = features(list(self.closes))
        if x is None or self.model is None:
            return []
        (probability,) = self.model.score([x])
        self.last_signal = probability
        if (
            self.last_intent_bar is not None
            and bar - self.last_intent_bar <= self.config.cooldown_bars
        ):
            return []
        decision = decide(self.config, probability, self.position, price, self._quote, self._asset)
        if decision is None:
            return []
        self.last_intent_bar = bar
        return [self._intent(bar, decision, x, probability)]

    def _intent(
        self, bar: int, decision: Decision, x: Sequence[float], probability: float
    ) -> IntentSubmission:
        spend, get = (
            (self._quote, self._asset) if decision.side == "buy" else (self._asset, self._quote)
        )
        version = self.model.version if self.model is not None else "unknown"
        ml = {name: value for name, value in zip(FEATURE_NAMES, x, strict=True)}
        ml |= {"signal": probability, f"model:{version}": 1.0}
        return IntentSubmission(
            strategy_id=self.strategy_id,
            client_intent_id=f"{self.strategy_id}-{bar}",
            type=IntentType.DISPOSE,
            assets=(AssetSpec(asset=spend, amount=decision.amount), AssetSpec(asset=get)),
            constraints=self._constraints,
            ml_features=ml,
        )

    # ------------------------------------------------------------------ fills

    def on_fill(self, fill: StrategyFill) -> None:
        step = fill.fill
        if (step.asset_in, step.asset_out) == (self._quote.symbol, self._asset.symbol):
            self.position += step.amount_out
        elif (step.asset_in, step.asset_out) == (self._asset.symbol, self._quote.symbol):
            self.position -= step.amount_in

    # ------------------------------------------------------------------ KeepsState

    def save_state(self) -> JsonState:
        return {
            "asset": self.config.asset,
            "quote": self.config.quote,
            "bar_ms": self.config.bar_ms,
            "closes": list(self.closes),
            "bar": self.bar,
            "bar_close": None if self.bar_close is None else str(self.bar_close),
            "position": str(self.position),
            "last_intent_bar": self.last_intent_bar,
        }

    def restore_state(self, state: JsonState) -> None:
        try:
            closes = [float(c) for c in state["closes"]]
            bar = state["bar"]
            bar_close = None if state["bar_close"] is None else Decimal(state["bar_close"])
            position = Decimal(state["position"])
            last = state["last_intent_bar"]
            # Absent from a state saved before they were kept: this config's, then.
            pair = (state.get("asset", self.config.asset), state.get("quote", self.config.quote))
            bar_ms = int(state.get("bar_ms", self.config.bar_ms))
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise ValueError(f"not a momentum state: {state!r}") from exc
        for name, value in (("bar", bar), ("last_intent_bar", last)):
            if value is not None and not isinstance(value, int):
                raise ValueError(f"{name} must be an integer or null, got {value!r}")
        if pair != (self.config.asset, self.config.quote):
            closes, bar, bar_close, position, last = [], None, None, Decimal(0), None
        elif bar_ms != self.config.bar_ms:
            closes, bar, bar_close = [], None, None
            last = None if last is None else last * bar_ms // self.config.bar_ms
        self.closes = deque(closes[-BARS_NEEDED:], maxlen=BARS_NEEDED)
        self.bar, self.bar_close, self.position, self.last_intent_bar = (
            bar,
            bar_close,
            position,
            last,
        )


def _quote_depth(pool: PoolState, quote: Asset) -> int:
    return pool.reserve1 if pool.token1 == quote.symbol else pool.reserve0
