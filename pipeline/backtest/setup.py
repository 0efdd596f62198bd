"""The topology a backtest runs: the user's own, with the sim venue trading the data's pools.

    topology.yaml --every venue but sim disabled-->
                  --sim's pools := the data's pools (ids, tokens, fee, first reserves)-->
                  --the strategy runner placed first (if the topology has not placed it),
                    project left out (the backtest writes the event log itself)-->  Topology

Every pool in the data becomes a sim pool of the same id, whichever venue recorded it: the
sim venue replays the market (a Uniswap V3 state's virtual reserves make a constant-product
pool that prices like it near the current price; beyond, it is an approximation).  Market
records are relabelled ``venue: sim`` (``as_sim``) so a strategy sees the venue it trades on.
Validation, risk limits, fusion, assets, strategies: the user's topology, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.backtest.data import POOLS_TOPIC, MarketEvent, read_market
from pipeline.market.feed import pool_key, pool_value
from pipeline.models.market import PoolState
from pipeline.topology.models import Topology

SIM = "sim"
RUNNER = "strategy_runner"
RUNNER_STAGE: dict[str, Any] = {
    "name": RUNNER,
    "function": "pipeline.stages.strategy_runner:build",
    "inputs": ["sep.intents.ingested", "sep.executions", POOLS_TOPIC],
    "outputs": ["sep.intents.submitted"],
    "batch": {"max": 500, "within_ms": 0},
    "description": "the strategies: market data and fills in, intents out",
}
LEFT_OUT = frozenset({"project"})


class BacktestSetupError(ValueError):
    """The data and the topology do not make a backtest (a message a person can act on)."""


def as_sim(event: MarketEvent) -> MarketEvent:
    """A pool record as the sim venue's (unchanged if it is already)."""
    if event.topic != POOLS_TOPIC or event.key.startswith(b"sim/"):
        return event
    state = PoolState.model_validate_json(event.value).model_copy(update={"venue": SIM})
    return MarketEvent(event.at_ms, event.topic, pool_key(state), pool_value(state))


def first_pool_states(events: Iterable[MarketEvent]) -> list[PoolState]:
    """The first state of every pool in ``events``, by pool id."""
    seen: dict[str, PoolState] = {}
    keys: set[bytes] = set()
    for event in events:
        if event.topic != POOLS_TOPIC or event.key in keys:
            continue
        keys.add(event.key)
        state = PoolState.model_validate_json(event.value)
        seen.setdefault(state.pool_id, state)
    return [seen[pool_id] for pool_id in sorted(seen)]


def data_pools(path: Path) -> list[PoolState]:
    return first_pool_states(read_market(path))


def topology_pools(topology: Topology) -> list[PoolState]:
    """The sim venue's configured pools (``plugins.venues.sim.config.pools``) as pool states:
    where generated histories start."""
    use = topology.plugins.venues.get(SIM)
    if use is None:
        raise BacktestSetupError("topology.yaml configures no sim venue (plugins.venues.sim)")
    assets = {a.symbol: a for a in topology.assets}
    states = []
    for pool in use.config.get("pools", ()):
        token0, token1 = assets[pool["token0"]], assets[pool["token1"]]
        states.append(
            PoolState(
                pool_id=pool["pool_id"],
                venue=SIM,
                chain_id=token0.chain_id,
                token0=token0.symbol,
                token1=token1.symbol,
                reserve0=int(Decimal(str(pool["reserve0"])).scaleb(token0.decimals)),
                reserve1=int(Decimal(str(pool["reserve1"])).scaleb(token1.decimals)),
                fee=int(pool["fee"]),
            )
        )
    return sorted(states, key=lambda s: s.pool_id)


def sim_pool_config(state: PoolState, decimals: Mapping[str, int]) -> dict[str, Any]:
    """A ``plugins.venues.sim.config.pools`` entry for ``state`` (reserves in human units)."""
    for symbol in (state.token0, state.token1):
        if symbol not in decimals:
            raise BacktestSetupError(
                f"pool {state.pool_id!r} trades {symbol}, which topology.yaml's assets lack"
            )
    return {
        "pool_id": state.pool_id,
        "token0": state.token0,
        "token1": state.token1,
        "reserve0": str(Decimal(state.reserve0).scaleb(-decimals[state.token0])),
        "reserve1": str(Decimal(state.reserve1).scaleb(-decimals[state.token1])),
        "fee": state.fee,
    }


def backtest_topology(
    topology: Topology,
    pools: Iterable[PoolState],
    *,
    strategies: Mapping[str, Mapping[str, Any]] | None = None,
    latency_ms: int | None = None,
    require_strategy: bool = True,
) -> Topology:
    """``topology`` made into the backtest's (see the module doc).  ``strategies``: the
    ``plugins.strategies`` section to use instead of the topology's (name -> {config: ...})."""
    data = topology.model_dump(by_alias=True)
    data["app"]["mode"] = "backtest"
    decimals = {a.symbol: a.decimals for a in topology.assets}
    configs = [sim_pool_config(p, decimals) for p in pools]
    if not configs:
        raise BacktestSetupError("the data holds no pool states (sep.market.pools records)")
    venues = data["plugins"]["venues"]
    sim = venues.get(SIM, {"enabled": True, "config": {}})
    sim_config = dict(sim.get("config") or {})
    sim_config["pools"] = configs
    if latency_ms is not None:
        sim_config["latency_ms"] = latency_ms
    for name in venues:
        venues[name] = {"enabled": False, "config": venues[name].get("config", {})}
    venues[SIM] = {"enabled": True, "config": sim_config}
    if strategies is not None:
        data["plugins"]["strategies"] = {k: dict(v) for k, v in strategies.items()}
    strategy_uses = data["plugins"]["strategies"].values()
    if require_strategy and not any(use.get("enabled", True) for use in strategy_uses):
        raise BacktestSetupError(
            "no strategy to run: enable one under plugins.strategies, or pass --strategy"
        )
    stages = [s for s in data["stages"] if s["name"] not in LEFT_OUT]
    if not any(s["name"] == RUNNER for s in stages):
        stages.insert(0, dict(RUNNER_STAGE))
    data["stages"] = stages
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise BacktestSetupError(f"the backtest's topology is not valid: {exc}") from exc


def event_topics(topology: Topology) -> list[str]:
    """The topics whose records are events (what project would store), in stage order
    (with ``lanes:``, ingest's events are on every lane topic)."""
    lanes = topology.lanes.topics if topology.lanes is not None else ()
    topics: list[str] = []
    for stage in topology.stages:
        if stage.name == RUNNER or not stage.outputs:
            continue
        for topic in (stage.events_topic, *(t for t in stage.outputs if t in lanes)):
            if topic not in topics:
                topics.append(topic)
    return topics
