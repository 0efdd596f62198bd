"""Counterfactual replay: a backtest's intents rerun without the strategy.  Unchanged
settings reproduce every outcome and cost exactly; a lower risk limit rejects them; a
latency changes the fills, intent by intent, against the same arrival prices."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.backtest.counterfactual import (
    ArrivalPrices,
    SettingError,
    apply_settings,
    compare,
    select,
    submissions_of,
    totals,
)
from pipeline.backtest.data import read_market, write_market
from pipeline.backtest.driver import Backtest
from pipeline.backtest.generators import GeneratorConfig, generate
from pipeline.backtest.setup import backtest_topology, data_pools
from pipeline.models.market import PoolState
from pipeline.topology import load_topology
from pipeline.topology.models import Topology

START = 1_767_225_600_000
POOL = PoolState(
    pool_id="sim-weth-usdc-5", venue="sim", chain_id=31337, token0="WETH", token1="USDC",
    reserve0=2_000 * 10**18, reserve1=6_000_000 * 10**6, fee=500,
)  # fmt: skip
DCA = {"asset": "WETH", "quote": "USDC", "amount": "20000", "interval_ms": 1_800_000,
       "start_ms": START}  # fmt: skip


@pytest.fixture(autouse=True)
def quiet() -> None:
    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cf") / "walk.jsonl"
    config = GeneratorConfig(seed=21, steps=180, vol=Decimal("0.004"), start_ms=START)
    write_market(path, {}, generate(config, [POOL]))
    return path


async def run(topology: Topology, data: Path, work: Path, **kwargs: Any) -> list[dict[str, Any]]:
    result = await Backtest(topology, read_market(data), work, **kwargs).run()
    assert result.fatal is None
    return [orjson.loads(e) for e in result.events]


async def original(data: Path, tmp_path: Path) -> list[dict[str, Any]]:
    topology = backtest_topology(
        load_topology(), data_pools(data), strategies={"dca": {"config": DCA}}
    )
    return await run(topology, data, tmp_path / "original")


async def replay(data: Path, tmp_path: Path, before: list[dict[str, Any]], *settings: str) -> Any:
    work = tmp_path / ("replay-" + "-".join(settings).replace("=", "_").replace(".", "_"))
    base = backtest_topology(
        load_topology(), data_pools(data), strategies={}, require_strategy=False
    )
    topology, splits = apply_settings(base, settings)
    after = await run(
        topology, data, work,
        submissions=submissions_of(before), max_splits=splits,
    )  # fmt: skip
    return compare(before, after, ArrivalPrices(data, topology, "USDC")), after


async def test_unchanged_settings_reproduce_every_outcome(data: Path, tmp_path: Path) -> None:
    before = await original(data, tmp_path)
    rows, after = await replay(data, tmp_path, before)
    assert len(rows) == 6  # three hours, a buy every 30 minutes
    assert all(r.before.state == "completed" for r in rows)
    assert [r.after for r in rows] == [r.before for r in rows]
    # The same intents under the same ids: ingest derives them from the same records.
    ids = {e["correlationId"] for e in before if e["topic"] == "intent.submitted"}
    assert ids == {e["correlationId"] for e in after if e["topic"] == "intent.submitted"}
    # A 20,000 USDC buy in a 6M pool at 0.05 %: ~5 bps of fee and ~33 bps of impact.
    assert all(Decimal(30) < r.before.bps < Decimal(45) for r in rows)


async def test_a_lower_limit_rejects_and_a_latency_moves_the_fills(
    data: Path, tmp_path: Path
) -> None:
    before = await original(data, tmp_path)
    rows, _ = await replay(data, tmp_path, before, "risk.max_notional=5000")
    assert {r.after.state for r in rows} == {"risk_rejected"}
    assert totals(rows)["after"]["completed"] == 0
    rows, _ = await replay(data, tmp_path, before, "plugins.venues.sim.config.latency_ms=120000")
    assert {r.after.state for r in rows} <= {"completed", "failed"}
    changed = [r for r in rows if r.after.amount_out != r.before.amount_out]
    assert len(changed) == len(rows)  # two minutes of market under every fill
    assert {r.after.amount_in for r in rows if r.after.state == "completed"} == {Decimal(20000)}


def test_bad_settings_say_why() -> None:
    topology = load_topology()
    for setting, message in [
        ("risk.nope=1", "no 'nope'"),
        ("nokey", "key=value"),
        ("plan.max_splits=0", ">= 1"),
        ("risk.max_notional=abc", "invalid topology"),
    ]:
        with pytest.raises(SettingError, match=message):
            apply_settings(topology, [setting])
    changed, splits = apply_settings(topology, ["risk.max_notional=5000", "plan.max_splits=2"])
    assert changed.risk.max_notional == Decimal(5000)
    assert splits == 2


def test_only_intents_inside_the_data_and_of_the_strategies_are_chosen() -> None:
    def submitted(intent_id: str, strategy: str, at_ms: int) -> dict[str, Any]:
        intent = {"strategyId": strategy, "createdAtMs": at_ms}
        return {"topic": "intent.submitted", "correlationId": intent_id,
                "payload": {"intent": intent}}  # fmt: skip

    events = [
        submitted("a", "dca", 100),
        {"topic": "exec.completed", "correlationId": "a", "payload": {}},
        submitted("b", "dca", 99),  # before the data
        submitted("c", "other", 150),
        submitted("d", "dca", 200),
    ]
    chosen, left_out = select(events, (100, 200), ["dca"])
    assert [e["correlationId"] for e in chosen] == ["a", "a", "d"]
    assert left_out == 2
    assert len(select(events, (100, 200))[0]) == 4  # every strategy
