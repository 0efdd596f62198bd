"""The breakers end to end in memory: a whale's sales drive the sim venue's WETH price down
against a strategy holding WETH; its loss, marked to market, takes it NORMAL -> REDUCING ->
HALTED at the configured thresholds.  In REDUCING a sale (reducing) passes and a purchase is
refused; in HALTED nothing passes.  The real stages, sim venue and risk engine; no broker.

The expected state after each push is computed here independently: the victim's holdings
from its fills on ``sep.executions``, WETH at the deepest WETH/USDC pool's reserve ratio.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.control.keys import risk_key
from pipeline.models.control import RiskStateChanged
from pipeline.runtime.delivery.memory import MemoryRuntime, build_memory_runtime
from pipeline.runtime.lifecycle import Lifecycle
from pipeline.samples import submission
from pipeline.stages.base import now_ms
from pipeline.stages.validate import ValidateStage
from pipeline.topology import load_topology
from pipeline.topology.models import PluginUse, StrategyLimits, Topology

STAGES = ("ingest", "validate", "prioritise", "plan", "execute")
VICTIM, WHALE = "victim", "whale"
CAPITAL, REDUCE_AT, HALT_AT = Decimal(100_000), Decimal(1_000), Decimal(3_000)


def scenario_topology() -> Topology:
    topology = load_topology()
    venues = dict(topology.plugins.venues)
    venues["uniswap_v3"] = PluginUse(enabled=False)  # no chain in a unit test
    victim = StrategyLimits(
        capital=CAPITAL,
        reduce_at_loss=REDUCE_AT,
        halt_at_loss=HALT_AT,
        reduce_at_drawdown=Decimal("0.5"),
        halt_at_drawdown=Decimal("0.9"),
    )
    risk = topology.risk.model_copy(
        update={
            "price_refresh_ms": 0,
            # The whale's short grows past the default position limit.
            "strategies": {VICTIM: victim, WHALE: StrategyLimits(max_position=Decimal(10**8))},
            "global_": topology.risk.global_.model_copy(
                update={"reduce_at_loss": None, "halt_at_loss": None}
            ),
        }
    )
    return topology.model_copy(
        update={
            "risk": risk,
            "plugins": topology.plugins.model_copy(update={"venues": venues}),
        }
    )


class Scenario:
    def __init__(self, runtime: MemoryRuntime, lifecycle: Lifecycle, topology: Topology) -> None:
        self.runtime, self.lifecycle, self.topology = runtime, lifecycle, topology
        (stage,) = [p for p in lifecycle.processors if isinstance(p, ValidateStage)]
        self.engine = stage.risk
        self.n = 0

    async def submit(self, strategy: str, kind: str, amount: str, slippage: str = "0.05") -> str:
        """Run one intent through; its risk verdict (``risk.approved`` / ``risk.rejected``)."""
        self.n += 1
        body = submission(
            self.topology,
            kind,
            "WETH",
            "USDC",
            amount,
            strategy_id=strategy,
            client_intent_id=f"c{self.n}",
            max_slippage=slippage,
            venues=["sim"],
        )
        start = len(self.runtime.topics.log.get("sep.intents.validated", []))
        self.runtime.feed("sep.intents.submitted", strategy.encode(), orjson.dumps(body))
        await self.runtime.run_until_idle()
        verdicts = [
            decode_event(r.value) for r in self.runtime.topics.log["sep.intents.validated"][start:]
        ]
        self.last = next(e for e in verdicts if e.topic.startswith("risk."))
        return self.last.topic

    async def evaluate(self) -> RiskStateChanged | None:
        """What each worker's breaker loop does every ``evaluate_interval_ms``."""
        await self.engine.prepare()
        await self.engine.evaluate(now_ms())
        return self.state()

    def state(self) -> RiskStateChanged | None:
        assert self.runtime.control is not None
        event = self.runtime.control.get(risk_key(f"strategy:{VICTIM}"))
        return None if event is None else event.payload_as(RiskStateChanged)

    async def weth_mid(self) -> Decimal:
        venue = self.engine.marks._source.venues["sim"]
        pools = [p for p in await venue.pools() if {p.token0, p.token1} == {"WETH", "USDC"}]
        deepest = max(pools, key=lambda p: p.reserve1 if p.token1 == "USDC" else p.reserve0)
        weth = Decimal(deepest.reserve0 if deepest.token0 == "WETH" else deepest.reserve1) / 10**18
        usdc = Decimal(deepest.reserve1 if deepest.token1 == "USDC" else deepest.reserve0) / 10**6
        return usdc / weth

    def victim_holdings(self) -> dict[str, Decimal]:
        """WETH and USDC the victim holds, from its fills (independent of the risk book)."""
        ids = {
            e.correlation_id
            for r in self.runtime.topics.log["sep.intents.validated"]
            if (e := decode_event(r.value)).topic == "intent.accepted"
            and e.payload["intent"]["strategyId"] == VICTIM
        }
        held = {"WETH": Decimal(0), "USDC": Decimal(0)}
        for r in self.runtime.topics.log["sep.executions"]:
            e = decode_event(r.value)
            if e.topic == "exec.step_filled" and e.correlation_id in ids:
                held[e.payload["assetIn"]] -= Decimal(e.payload["amountIn"])
                held[e.payload["assetOut"]] += Decimal(e.payload["amountOut"])
        return held

    async def victim_equity(self) -> Decimal:
        held = self.victim_holdings()
        return CAPITAL + held["USDC"] + held["WETH"] * await self.weth_mid()


def expected(loss: Decimal) -> str:
    return "HALTED" if loss >= HALT_AT else "REDUCING" if loss >= REDUCE_AT else "NORMAL"


async def test_prices_driven_against_a_strategy_take_it_to_reducing_then_halted(
    tmp_path: Path,
) -> None:
    topology = scenario_topology()
    runtime, lifecycle = build_memory_runtime(topology, Settings(data_dir=tmp_path), STAGES)
    await lifecycle.ensure_started()
    try:
        s = Scenario(runtime, lifecycle, topology)
        assert await s.submit(VICTIM, "ACQUIRE", "10") == "risk.approved"
        anchor = await s.evaluate()
        assert anchor is not None
        assert anchor.rule == "epoch"
        assert anchor.state == "NORMAL"
        baseline = anchor.baseline_equity
        assert baseline is not None
        assert baseline == CAPITAL  # the first epoch starts from the capital

        seen: list[str] = ["NORMAL"]
        decided: dict[str, Any] = {}
        for _push in range(20):
            assert await s.submit(WHALE, "DISPOSE", "150") == "risk.approved", s.last.payload
            record = await s.evaluate()
            assert record is not None
            loss = baseline - await s.victim_equity()
            if abs(loss - REDUCE_AT) > 20 and abs(loss - HALT_AT) > 20:  # off the boundaries
                assert record.state == expected(loss), (loss, record)
            if record.state != seen[-1]:
                seen.append(record.state)
                # The transition carries the numbers that caused it.
                assert record.previous == seen[-2]
                assert record.pnl is not None
                assert -record.pnl >= Decimal(record.limit or "0")
                assert record.rule == (
                    "reduce_at_loss" if record.state == "REDUCING" else "halt_at_loss"
                )
                assert record.thresholds["halt_at_loss"] == "3000"
            if record.state == "REDUCING" and "reducing" not in decided:
                # Buying more WETH increases exposure: refused, naming the rule and state.
                assert await s.submit(VICTIM, "ACQUIRE", "1") == "risk.rejected"
                assert s.last.payload["rule"] == "risk_state"
                assert "only exposure-reducing" in s.last.payload["message"]
                assert s.last.payload["actual"] == "increases exposure"
                # Selling part of the long reduces it: passes (and trades).
                assert await s.submit(VICTIM, "DISPOSE", "2") == "risk.approved"
                # Selling more than is held would flip it short: refused.
                assert await s.submit(VICTIM, "DISPOSE", "20") == "risk.rejected"
                decided["reducing"] = True
            if record.state == "HALTED":
                break
        assert seen == ["NORMAL", "REDUCING", "HALTED"]
        assert await s.submit(VICTIM, "DISPOSE", "1") == "risk.rejected"
        assert s.last.payload["rule"] == "risk_state"
        assert s.last.payload["actual"] == "HALTED"
        # The whale, another strategy, still trades: breakers are per strategy.
        assert await s.submit(WHALE, "ACQUIRE", "1") == "risk.approved"
    finally:
        await lifecycle.stop()
    assert runtime.fatal is None
