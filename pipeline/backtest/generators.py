"""Pool histories from a fixed seed: random walks, regime switches, gaps, pump-then-dump.

Each generator draws one price path per pair (every pool of a pair follows it: arbitrage
keeps them together; pairs move independently, so a triangle of pairs may drift apart -- a
simplification) and turns it into pool states at constant liquidity: a constant-product
pool at price ``P`` (quote base units per base unit) with invariant ``k`` holds
``reserve0 = sqrt(k / P)``, ``reserve1 = sqrt(k * P)``.  One event per pool per step, in pool
id order, at ``start_ms + i * step_ms`` (a gap skips steps).

    seed --random.Random--> log-returns (per step) --Decimal exp--> price path per pair
         --sqrt(k/P), sqrt(k*P), integers--> PoolState per pool --> MarketEvent lines

The random draws are floats (``random.gauss``), rounded to 12 places before anything is
computed from them; prices and reserves are Decimal and integers.  The same seed and
parameters give the same file on the same Python version (the draws are CPython's Mersenne
Twister); a backtest's determinism is over the data file, which is what it reads.

Models (``GeneratorConfig.model``):
    random_walk  log-return ~ N(drift, vol) per step
    regimes      a Markov chain over ``regimes`` (drift, vol), switching with probability
                 ``switch_p`` per step: calm trends and volatile spells
    gaps         random_walk, but with probability ``gap_p`` per step the feed goes silent
                 for ``gap_steps`` steps and the price jumps N(0, jump_vol) across the gap
    pump_dump    random_walk, then from step ``pump_at`` the price rises by ``pump`` (a
                 fraction, 0.8 = +80 %) over ``pump_steps``, then falls by ``dump`` (0.6 =
                 -60 % from the top) over ``dump_steps``: the live-trading seed's pattern
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Literal

from pipeline.backtest.data import POOLS_TOPIC, MarketEvent
from pipeline.market.feed import pool_key, pool_value
from pipeline.models.market import PoolState

Model = Literal["random_walk", "regimes", "gaps", "pump_dump"]
MODELS: tuple[Model, ...] = ("random_walk", "regimes", "gaps", "pump_dump")
_CTX = Context(prec=50)
_DRAW = Decimal("1e-12")


@dataclass(frozen=True)
class Regime:
    drift: Decimal
    vol: Decimal


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate.  Per-step figures (``drift``, ``vol``) are log-returns per step."""

    model: Model = "random_walk"
    seed: int = 0
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    step_ms: int = 60_000
    steps: int = 1_440
    drift: Decimal = Decimal(0)
    vol: Decimal = Decimal("0.002")
    regimes: tuple[Regime, ...] = (
        Regime(Decimal("0.0002"), Decimal("0.001")),
        Regime(Decimal("-0.0003"), Decimal("0.004")),
    )
    switch_p: Decimal = Decimal("0.01")
    gap_p: Decimal = Decimal("0.005")
    gap_steps: int = 30
    jump_vol: Decimal = Decimal("0.02")
    pump_at: int = 600
    pump: Decimal = Decimal("0.8")
    pump_steps: int = 60
    dump: Decimal = Decimal("0.6")
    dump_steps: int = 30

    def meta(self) -> dict[str, object]:
        """The parameters, for the data file's header (Decimals as strings)."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = [{"drift": str(r.drift), "vol": str(r.vol)} for r in value]
            out[name] = str(value) if isinstance(value, Decimal) else value
        return {"generator": out}


def _draw(rng: random.Random, mu: Decimal, sigma: Decimal) -> Decimal:
    if sigma == 0:
        return mu
    z = Decimal(repr(rng.gauss(0.0, 1.0))).quantize(_DRAW)
    return mu + sigma * z


def log_returns(config: GeneratorConfig, rng: random.Random) -> Iterator[tuple[int, Decimal]]:
    """(step index, log-return into that step) for every step that has an event; step 0 has
    return 0 (the pools' configured price)."""
    yield 0, Decimal(0)
    regime = 0
    step = 1
    pump_end = config.pump_at + config.pump_steps
    dump_end = pump_end + config.dump_steps
    while step < config.steps:
        if config.model == "regimes":
            if Decimal(repr(rng.random())) < config.switch_p:
                regime = (regime + 1) % len(config.regimes)
            r = config.regimes[regime]
            yield step, _draw(rng, r.drift, r.vol)
        elif config.model == "gaps" and Decimal(repr(rng.random())) < config.gap_p:
            step += config.gap_steps  # silent: no event in between
            if step >= config.steps:
                return
            yield (
                step,
                _draw(rng, config.drift, config.vol) + _draw(rng, Decimal(0), config.jump_vol),
            )
        elif config.model == "pump_dump" and config.pump_at <= step < dump_end:
            noise = _draw(rng, Decimal(0), config.vol)
            if step < pump_end:
                total = (1 + config.pump).ln(_CTX)
                yield step, total / config.pump_steps + noise
            else:
                total = (1 - config.dump).ln(_CTX)
                yield step, total / config.dump_steps + noise
        else:
            yield step, _draw(rng, config.drift, config.vol)
        step += 1


@dataclass
class _Pair:
    log_price: Decimal = Decimal(0)
    pools: list[PoolState] = field(default_factory=list)
    invariants: list[Decimal] = field(default_factory=list)
    spots: list[Decimal] = field(default_factory=list)


def at_price(state: PoolState, price: Decimal, invariant: Decimal | None = None) -> PoolState:
    """``state`` moved to ``price`` (token1 base units per token0 base unit) at the same
    liquidity: ``reserve0 * reserve1`` stays ``invariant`` (by default the state's own)."""
    k = Decimal(state.reserve0) * Decimal(state.reserve1) if invariant is None else invariant
    reserve0 = int(_CTX.sqrt(_CTX.divide(k, price)))
    reserve1 = int(_CTX.sqrt(_CTX.multiply(k, price)))
    return state.model_copy(update={"reserve0": max(reserve0, 1), "reserve1": max(reserve1, 1)})


def generate(config: GeneratorConfig, pools: Sequence[PoolState]) -> Iterator[MarketEvent]:
    """The events of ``pools`` (their states at step 0) moved along the model's paths."""
    if config.steps < 1 or config.step_ms < 1:
        raise ValueError("steps and step_ms must be at least 1")
    if not pools:
        raise ValueError("no pools to generate a history for")
    pairs: dict[tuple[str, str], _Pair] = {}
    for state in sorted(pools, key=lambda s: s.pool_id):
        pair = pairs.setdefault((state.token0, state.token1), _Pair())
        pair.pools.append(state)
        pair.invariants.append(Decimal(state.reserve0) * Decimal(state.reserve1))
        pair.spots.append(_CTX.divide(Decimal(state.reserve1), Decimal(state.reserve0)))
    # One generator per pair, seeded from the seed and the pair: adding a pair does not
    # change another pair's path.
    streams = {
        key: log_returns(config, random.Random(f"{config.seed}/{key[0]}/{key[1]}"))
        for key in sorted(pairs)
    }
    heads = {key: next(stream, None) for key, stream in streams.items()}
    while any(head is not None for head in heads.values()):
        step = min(head[0] for head in heads.values() if head is not None)
        at_ms = config.start_ms + step * config.step_ms
        due: list[PoolState] = []
        for key in sorted(heads):
            head = heads[key]
            if head is None or head[0] != step:
                continue
            pair = pairs[key]
            pair.log_price += head[1]
            factor = pair.log_price.exp(_CTX)
            for state, k, spot in zip(pair.pools, pair.invariants, pair.spots, strict=True):
                due.append(at_price(state, spot * factor, k))
            heads[key] = next(streams[key], None)
        for state in sorted(due, key=lambda s: s.pool_id):
            yield MarketEvent(at_ms, POOLS_TOPIC, pool_key(state), pool_value(state))
