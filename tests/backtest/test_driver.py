"""A backtest over generated data: byte-identical event logs from two runs, fills priced on
the data's pool states, and the sim venue's latency waited out on the simulated clock."""

from __future__ import annotations

import gc
import logging
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.backtest.data import BOOKS_TOPIC, MarketEvent, read_market, write_market
from pipeline.backtest.driver import Backtest, BacktestResult, write_event_log
from pipeline.backtest.generators import GeneratorConfig, generate
from pipeline.backtest.setup import backtest_topology, data_pools
from pipeline.models.market import PoolState
from pipeline.ops import amount_out
from pipeline.topology import load_topology

START = 1_767_225_600_000
MINUTE = 60_000
POOL = PoolState(
    pool_id="sim-weth-usdc-5",
    venue="sim",
    chain_id=31337,
    token0="WETH",
    token1="USDC",
    reserve0=2_000 * 10**18,
    reserve1=6_000_000 * 10**6,
    fee=500,
)
# The same pair, shallower and dearer: the planner routes on POOL; its id sorts first, so at
# each moment the strategy hears of it first, before POOL's state of the same millisecond.
TWIN = POOL.model_copy(
    update={"pool_id": "sim-weth-usdc-30", "fee": 3000, "reserve0": 500 * 10**18,
            "reserve1": 1_500_000 * 10**6}
)  # fmt: skip


def dca(interval_ms: int = 30 * MINUTE) -> dict[str, Any]:
    return {
        "dca": {
            "config": {
                "asset": "WETH",
                "quote": "USDC",
                "amount": "1000",
                "interval_ms": interval_ms,
                "start_ms": START,
            }
        }
    }


@pytest.fixture(autouse=True)
def quiet() -> None:
    # The planner warns when its pending plans outlive an hour of simulated quiet.
    logging.getLogger("pipeline.stages.pending_flow").setLevel(logging.ERROR)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "walk.jsonl"
    config = GeneratorConfig(model="random_walk", seed=7, steps=240, vol=Decimal("0.01"))
    write_market(path, config.meta(), generate(config, [POOL, TWIN]))
    return path


async def run(data: Path, work: Path, latency_ms: int | None = None) -> BacktestResult:
    topology = backtest_topology(
        load_topology(), data_pools(data), strategies=dca(), latency_ms=latency_ms
    )
    backtest = Backtest(topology, read_market(data), work, seed=3, start_ms=START)
    return await backtest.run()


async def test_two_runs_write_byte_identical_event_logs(data: Path, tmp_path: Path) -> None:
    logs = []
    for name in ("one", "two"):
        result = await run(data, tmp_path / name)
        assert result.fatal is None
        log = tmp_path / f"{name}.jsonl"
        write_event_log(log, result.events)
        logs.append(log.read_bytes())
    assert logs[0] == logs[1]
    assert result.market_events == 480
    assert result.counts["exec.completed"] == 8  # one buy per 30 minutes over 4 hours
    ids = [orjson.loads(line)["eventId"] for line in logs[0].splitlines()]
    assert len(ids) == len(set(ids)) == sum(result.counts.values())


async def test_each_fill_is_priced_on_the_data_at_its_moment(data: Path, tmp_path: Path) -> None:
    result = await run(data, tmp_path / "run")
    states = {
        e.at_ms: state
        for e in read_market(data)
        if (state := PoolState.model_validate_json(e.value)).pool_id == POOL.pool_id
    }
    fills = [e for raw in result.events if (e := orjson.loads(raw))["topic"] == "exec.step_filled"]
    assert len(fills) == 8
    for fill in fills:
        at_ms = int(datetime.fromisoformat(fill["timestamp"]).timestamp() * 1000)
        state = states[at_ms]  # the market event that made the strategy buy
        expected = amount_out(state.reserve1, state.reserve0, 1000 * 10**6, state.fee)
        got = int(Decimal(fill["payload"]["amountOut"]).scaleb(18))
        assert got == expected


async def test_latency_is_waited_on_the_simulated_clock(data: Path, tmp_path: Path) -> None:
    latency = 90_000  # a minute and a half: the market moves once or twice meanwhile
    first = await run(data, tmp_path / "a", latency_ms=latency)
    second = await run(data, tmp_path / "b", latency_ms=latency)
    assert first.events == second.events
    by_intent: dict[str, dict[str, str]] = {}
    for raw in first.events:
        event = orjson.loads(raw)
        by_intent.setdefault(event["correlationId"], {})[event["topic"]] = event["timestamp"]
    assert len(by_intent) == 8
    for stamps in by_intent.values():
        sent = datetime.fromisoformat(stamps["exec.step_submitted"])
        filled = datetime.fromisoformat(stamps["exec.step_filled"])
        assert (filled - sent).total_seconds() * 1000 == latency


async def test_book_records_in_the_data_change_nothing(data: Path, tmp_path: Path) -> None:
    with_books = tmp_path / "with-books.jsonl"
    events = list(read_market(data))
    book = MarketEvent(events[5].at_ms, BOOKS_TOPIC, b"clob_a/WETH-USDC", b'{"kind": "snapshot"}')
    write_market(with_books, {}, [*events[:6], book, *events[6:]])
    plain = await run(data, tmp_path / "plain")
    mixed = await run(with_books, tmp_path / "mixed")
    assert mixed.events == plain.events
    assert mixed.market_events == plain.market_events + 1


async def test_a_work_directory_of_another_run_is_refused(data: Path, tmp_path: Path) -> None:
    await run(data, tmp_path / "w")
    with pytest.raises(FileExistsError, match="another run"):
        await run(data, tmp_path / "w")


async def test_the_collector_is_as_it_was_after_a_run(data: Path, tmp_path: Path) -> None:
    # The run collects at its own pace and freezes what survives (driver._RunHeap); after
    # it nothing stays frozen, and automatic collection is back.
    assert gc.isenabled()
    result = await run(data, tmp_path / "run")
    assert result.fatal is None
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
