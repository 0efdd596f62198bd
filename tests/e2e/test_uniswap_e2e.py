"""Intents through the whole pipeline onto the real Uniswap V3 contracts on the dev chain.

The executor runs in its own worker process (its own consumer group), so a test can stop it
between planning and execution: to let another account trade first, or to kill it after it
sent a transaction.  What the pipeline says is checked against the chain itself: the
receipt's ``Swap`` events and the trader's token balances before and after the block.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from web3 import Web3

from pipeline.client import IntentProducer, predicted_intent_id
from pipeline.config import Settings
from pipeline.devstack.chain import rpc_call
from pipeline.devstack.uniswap import DevChain
from pipeline.harness import WorkerPool, skip_backlog, wait_until_finished
from pipeline.market.feed import PoolFeed
from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import VenueContext
from pipeline.runtime.app import group_id
from pipeline.samples import submission
from pipeline.topology import load_topology
from plugins.uniswap_v3 import UniswapV3Config, UniswapV3Venue
from plugins.uniswap_v3.contracts import abi, swap_logs
from tests.e2e.checks import COMPLETED_PATH, assert_contiguous, events_by_intent

pytestmark = pytest.mark.services

TOPOLOGY = load_topology()
VENUE = "uniswap_v3"
ERC20_ABI = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "v", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]


PLANNER_STAGES = ("ingest", "validate", "prioritise", "plan", "project")


async def _from_now(settings: Settings, stages: tuple[str, ...]) -> None:
    """This module's new consumer groups skip what earlier test modules left on the topics."""
    inputs = {t for s in TOPOLOGY.stages if s.name in stages for t in s.inputs}
    await skip_backlog(
        settings.kafka,
        group_id(TOPOLOGY, stages),
        {t.name: t.partitions for t in TOPOLOGY.topics if t.name in inputs},
    )


@pytest.fixture(scope="module")
async def planner(prepared: Settings) -> AsyncIterator[WorkerPool]:
    await _from_now(prepared, PLANNER_STAGES)
    pool = WorkerPool(prepared, layout=(",".join(PLANNER_STAGES),), name="planner")
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="module")
async def executor(prepared: Settings) -> AsyncIterator[WorkerPool]:
    await _from_now(prepared, ("execute",))
    pool = WorkerPool(prepared, layout=("execute",), name="executor")
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="module")
def w3(chain: DevChain) -> Web3:
    return Web3(Web3.HTTPProvider(chain.rpc_url))


def _units(symbol: str, amount: Decimal) -> int:
    return TOPOLOGY.asset(symbol).to_base_units(amount)


def _balance(w3: Web3, chain: DevChain, symbol: str, block: int) -> int:
    token = w3.eth.contract(
        address=Web3.to_checksum_address(chain.deployment.token(symbol).address), abi=ERC20_ABI
    )
    return int(token.functions.balanceOf(chain.deployment.trader).call(block_identifier=block))


async def _submit(settings: Settings, body: dict[str, Any]) -> str:
    async with IntentProducer(settings.kafka) as producer:
        stamp, delivery = await producer.send(body)
        await delivery
    return predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"])


def _intent(
    kind: str, subject: str, counter: str, amount: str, slippage: str = "0.01"
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    return submission(
        TOPOLOGY,
        kind,
        subject,
        counter,
        amount,
        strategy_id=f"chain-{run}",
        client_intent_id=run,
        max_slippage=slippage,
        time_window_ms=600_000,
        venues=[VENUE],
    )


async def _wait_for_topic(
    db: asyncpg.Connection,
    intent: str,
    topic: str,
    timeout: float = 90.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await db.fetchrow(
            "SELECT payload FROM events WHERE correlation_id = $1 AND topic = $2", intent, topic
        )
        if row is not None:
            payload: dict[str, Any] = orjson.loads(row["payload"])
            return payload
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{intent}: no {topic} after {timeout:.0f}s")


def _payloads(events: list[asyncpg.Record], topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(e["payload"]) for e in events if e["topic"] == topic]


@pytest.mark.parametrize(
    ("kind", "subject", "counter", "amount", "hops"),
    [
        ("DISPOSE", "WETH", "USDC", "1.5", 1),  # exact in, one pool
        ("ACQUIRE", "WETH", "USDC", "0.75", 1),  # exact out, one pool
        ("DISPOSE", "DAI", "WETH", "2500", 2),  # exact in, DAI -> USDC -> WETH
        ("ACQUIRE", "WBTC", "DAI", "0.02", 2),  # exact out, DAI -> USDC -> WBTC
    ],
)
async def test_intent_settles_on_chain_as_the_pipeline_reports(
    planner: WorkerPool,
    executor: WorkerPool,
    prepared: Settings,
    db: asyncpg.Connection,
    chain: DevChain,
    w3: Web3,
    kind: str,
    subject: str,
    counter: str,
    amount: str,
    hops: int,
) -> None:
    intent = await _submit(prepared, _intent(kind, subject, counter, amount))
    outcome = await wait_until_finished(prepared.postgres, [intent], timeout=120, pool=planner)
    events = (await events_by_intent(db, [intent]))[intent]
    assert outcome[intent] == "exec.completed", [(e["topic"], e["payload"]) for e in events]
    assert [e["topic"] for e in events] == COMPLETED_PATH
    assert_contiguous(intent, events)

    (approved,) = _payloads(events, "risk.approved")
    assert "funding" in approved["checks"]  # checked against the account's live balances
    (plan,) = _payloads(events, "plan.created")
    (step,) = plan["plan"]["steps"]
    assert step["venue"] == VENUE
    assert len(step["legs"]) == hops
    (submitted,) = _payloads(events, "exec.step_submitted")
    (filled,) = _payloads(events, "exec.step_filled")
    assert filled["orderRef"] == submitted["orderRef"]

    receipt = w3.eth.get_transaction_receipt(filled["orderRef"])
    assert receipt["status"] == 1
    assert receipt["from"] == Web3.to_checksum_address(chain.deployment.trader)
    swaps = swap_logs(receipt["logs"])
    assert len(swaps) == hops
    paid_in = max(swaps[0].amount0, swaps[0].amount1)  # the pool's view: positive is paid in
    paid_out = -min(swaps[-1].amount0, swaps[-1].amount1)
    asset_in, asset_out = filled["assetIn"], filled["assetOut"]
    assert _units(asset_in, Decimal(filled["amountIn"])) == paid_in
    assert _units(asset_out, Decimal(filled["amountOut"])) == paid_out

    block = receipt["blockNumber"]
    spent = _balance(w3, chain, asset_in, block - 1) - _balance(w3, chain, asset_in, block)
    got = _balance(w3, chain, asset_out, block) - _balance(w3, chain, asset_out, block - 1)
    assert (spent, got) == (paid_in, paid_out)

    if kind == "DISPOSE":  # exactly what was asked, sold; at least the floor, received
        assert Decimal(filled["amountIn"]) == Decimal(amount)
        assert Decimal(filled["amountOut"]) >= Decimal(step["minOut"])
    else:  # exactly what was asked, bought; at most the ceiling, paid
        assert Decimal(filled["amountOut"]) == Decimal(amount)
        assert Decimal(filled["amountIn"]) <= Decimal(step["maxIn"])


@pytest.fixture
async def rival(chain: DevChain, w3: Web3, tmp_path: Path) -> AsyncIterator[UniswapV3Venue]:
    """Another account (anvil's dev account 2) trading on the same pools."""
    venue = UniswapV3Venue(
        UniswapV3Config(
            rpc_url=chain.rpc_url, deployment_file=chain.deployment_path, dev_account=2
        ),
        VenueContext(data_dir=tmp_path, assets={a.symbol: a for a in TOPOLOGY.assets}),
    )
    await venue.start()
    weth = w3.eth.contract(
        address=Web3.to_checksum_address(chain.deployment.token("WETH").address), abi=ERC20_ABI
    )
    tx = weth.functions.transfer(venue.address, _units("WETH", Decimal(500))).transact(
        {"from": chain.deployment.trader}
    )
    w3.eth.wait_for_transaction_receipt(tx)
    try:
        yield venue
    finally:
        await venue.stop()


async def test_a_rival_trade_between_planning_and_execution_fails_the_intent_cleanly(
    planner: WorkerPool,
    executor: WorkerPool,
    prepared: Settings,
    db: asyncpg.Connection,
    chain: DevChain,
    w3: Web3,
    rival: UniswapV3Venue,
) -> None:
    executor.stop()  # plans are made, nothing is executed
    try:
        intent = await _submit(prepared, _intent("DISPOSE", "WETH", "USDC", "2", "0.001"))
        plan = (await _wait_for_topic(db, intent, "plan.created"))["plan"]
        (step,) = plan["steps"]
        start = w3.eth.block_number
        usdc_before = _balance(w3, chain, "USDC", start)
        weth_before = _balance(w3, chain, "WETH", start)

        # The rival sells 300 WETH through the very pools of the plan: the price drops by far
        # more than the intent's 0.1 %.
        legs = tuple(RouteLeg.model_validate(leg) for leg in step["legs"])
        sell = ExecutionStep(
            step_id=f"rival-{uuid.uuid4().hex[:8]}",
            venue=VENUE,
            mode=SwapMode.EXACT_IN,
            legs=legs,
            asset_in="WETH",
            asset_out="USDC",
            amount_in=Decimal(300),
            min_out=Decimal(0),
            amount_out=Decimal(0),
            max_in=Decimal(300),
        )
        await rival.wait_receipt(await rival.submit(sell), 30)
        moved_at = w3.eth.block_number
    finally:
        executor.start()

    # The rival's swap is market data: the pools' new state is published on
    # sep.market.pools, where every planner reads it.
    feed = PoolFeed(prepared.kafka)
    await feed.start()
    try:
        for pool_id in {leg.pool_id for leg in legs}:
            pool = w3.eth.contract(
                address=Web3.to_checksum_address(chain.deployment.pool(pool_id).address),
                abi=abi("UniswapV3Pool"),
            )
            on_chain = pool.functions.slot0().call(block_identifier=moved_at)[0]
            deadline = time.monotonic() + 30
            while True:
                state = next((p for p in feed.pools().get(VENUE, []) if p.pool_id == pool_id), None)
                if state is not None and (state.block or 0) >= moved_at:
                    break
                assert time.monotonic() < deadline, f"no state of {pool_id} after the swap"
                await feed.wait_for_update(feed.updates, timeout_s=30)
            assert state.sqrt_price_x96 == on_chain
    finally:
        await feed.stop()

    outcome = await wait_until_finished(prepared.postgres, [intent], timeout=120, pool=executor)
    events = (await events_by_intent(db, [intent]))[intent]
    assert outcome[intent] == "exec.failed", [(e["topic"], e["payload"]) for e in events]
    (failed,) = _payloads(events, "exec.step_failed")
    assert failed["reason"].startswith("slippage"), failed
    assert "Too little received" in failed["reason"]
    assert _payloads(events, "exec.step_submitted") == []  # refused before anything was sent
    assert_contiguous(intent, events)
    end = w3.eth.block_number
    assert _balance(w3, chain, "USDC", end) == usdc_before  # no funds moved
    assert _balance(w3, chain, "WETH", end) == weth_before


async def test_an_executor_killed_after_sending_awaits_the_same_transaction(
    planner: WorkerPool,
    executor: WorkerPool,
    prepared: Settings,
    db: asyncpg.Connection,
    chain: DevChain,
    w3: Web3,
) -> None:
    trader = Web3.to_checksum_address(chain.deployment.trader)
    rpc_call(chain.rpc_url, "evm_setAutomine", [False])  # the swap stays pending until mined
    try:
        nonce_before = w3.eth.get_transaction_count(trader, "latest")
        intent = await _submit(prepared, _intent("DISPOSE", "WETH", "USDC", "1"))
        submitted = await _wait_for_topic(db, intent, "exec.step_submitted")
        executor.kill()  # kill -9 with the transaction sent and not mined
        tx_hash = submitted["orderRef"]
        assert w3.eth.get_transaction(tx_hash)["nonce"] == nonce_before
        executor.start()
        await asyncio.sleep(3)  # the restarted executor finds the step and waits on it
        pending = w3.eth.get_block("pending", full_transactions=True)["transactions"]
        from_trader = [tx for tx in pending if tx["from"] == trader]
        assert [Web3.to_hex(tx["hash"]) for tx in from_trader] == [tx_hash]  # not sent again
    finally:
        rpc_call(chain.rpc_url, "evm_setAutomine", [True])
        rpc_call(chain.rpc_url, "evm_mine", [])

    outcome = await wait_until_finished(prepared.postgres, [intent], timeout=120, pool=executor)
    events = (await events_by_intent(db, [intent]))[intent]
    assert outcome[intent] == "exec.completed", [(e["topic"], e["payload"]) for e in events]
    assert [e["topic"] for e in events] == COMPLETED_PATH  # stored once each, in order
    assert_contiguous(intent, events)
    (filled,) = _payloads(events, "exec.step_filled")
    assert filled["orderRef"] == tx_hash
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    assert w3.eth.get_transaction_count(trader, "latest") == nonce_before + 1  # no gap, no twin


async def test_a_large_trade_is_split_across_pools_and_each_part_settles(
    planner: WorkerPool,
    executor: WorkerPool,
    prepared: Settings,
    db: asyncpg.Connection,
    chain: DevChain,
    w3: Web3,
) -> None:
    """Big enough that one pool's price impact costs more than a second swap's gas."""
    intent = await _submit(prepared, _intent("DISPOSE", "WETH", "USDC", "300", "0.05"))
    outcome = await wait_until_finished(prepared.postgres, [intent], timeout=120, pool=planner)
    events = (await events_by_intent(db, [intent]))[intent]
    assert outcome[intent] == "exec.completed", [(e["topic"], e["payload"]) for e in events]
    assert_contiguous(intent, events)
    (plan,) = _payloads(events, "plan.created")
    steps = plan["plan"]["steps"]
    assert len(steps) >= 2, steps  # split
    pools = [leg["poolId"] for step in steps for leg in step["legs"]]
    assert len(pools) == len(set(pools))  # the paths share no pool
    filled = _payloads(events, "exec.step_filled")
    assert [f["stepId"] for f in filled] == [s["stepId"] for s in steps]
    received = 0
    for fill in filled:  # each part is its own transaction, as reported
        receipt = w3.eth.get_transaction_receipt(fill["orderRef"])
        assert receipt["status"] == 1
        swaps = swap_logs(receipt["logs"])
        out = -min(swaps[-1].amount0, swaps[-1].amount1)
        assert _units("USDC", Decimal(fill["amountOut"])) == out
        received += out
    (done,) = _payloads(events, "exec.completed")
    assert _units("USDC", Decimal(done["amountOut"])) == received
    assert Decimal(done["amountIn"]) == Decimal(300)
    assert Decimal(done["amountOut"]) >= sum(Decimal(s["minOut"]) for s in steps)
