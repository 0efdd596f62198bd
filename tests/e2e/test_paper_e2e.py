"""Paper mode on the real chain: anvil with the real Uniswap V3 contracts, a worker in paper mode
(its topology's ``app.mode``), the real broker, PostgreSQL and Redis.

An intent allowed only ``uniswap_v3`` fills on that venue's paper twin at the chain pool's
price: the same amount QuoterV2 gives for the plan's step on chain (the twin's constant
product on the pool's virtual reserves is the V3 pool within its tick range), while the
trader's nonce and token balances on chain do not move.  A whale's swap on the chain then
moves the twin's pools within a market tick (the live venue's watcher polls blocks every
0.1 s, the worker's mirror hands the states over), and the next paper fill is at the new
chain price.  The sim venue is off: this is about the chain's prices.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import yaml
from web3 import Web3

from pipeline.config import Settings
from pipeline.devstack.uniswap import DevChain
from pipeline.harness import WorkerPool, skip_backlog, wait_until_finished
from pipeline.models.plan import ExecutionStep
from pipeline.ops.v3 import virtual_reserves
from pipeline.plugins.venue import VenueContext
from pipeline.runtime.app import group_id
from pipeline.samples import submission
from pipeline.topology import load_topology
from pipeline.topology.loader import DEFAULT_PATH
from plugins.sim_venue import Ledger
from plugins.sim_venue.paper import PAPER_LEDGER
from plugins.uniswap_v3 import UniswapV3Config, UniswapV3Venue
from plugins.uniswap_v3.contracts import ERC20_ABI
from tests.e2e.checks import COMPLETED_PATH, events_by_intent
from tests.e2e.whale import Whale

pytestmark = pytest.mark.services

VENUE = "uniswap_v3"
TICK_S = 5.0
"""How soon a chain move must reach the paper pools: the watcher polls every 0.1 s, the
feed and the mirror add milliseconds; 5 s is generous for a loaded 2-core machine."""


def _paper_topology(path: Path) -> Path:
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    # The session's app id, as the other e2e modules: its consumer group then commits past
    # this module's intents, which a later module's workers would otherwise pick up.
    raw["app"]["mode"] = "paper"
    raw["plugins"]["venues"]["sim"]["enabled"] = False
    raw["plugins"]["strategies"] = {}  # intents come from this test only
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
async def paper(
    prepared: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WorkerPool, Path]]:
    topology_file = _paper_topology(tmp_path_factory.mktemp("paper") / "topology.yaml")
    topology = load_topology(topology_file)
    assert topology.app.mode == "paper"
    inputs = {t for s in topology.stages if not s.singleton for t in s.inputs}
    await skip_backlog(  # other modules' intents on the shared topics are not this test's
        prepared.kafka,
        group_id(topology),
        {t.name: t.partitions for t in topology.topics if t.name in inputs},
    )
    workers = WorkerPool(
        prepared, count=1, name="paper", extra_env={"SEP_TOPOLOGY": str(topology_file)}
    )
    workers.start()
    try:
        yield workers, prepared.data_dir / "venues" / VENUE / PAPER_LEDGER
    finally:
        workers.stop()


@pytest.fixture
async def chain_venue(chain: DevChain, tmp_path: Path) -> AsyncIterator[UniswapV3Venue]:
    """The chain's own view, for QuoterV2 quotes and pool reads (read-only: sends nothing)."""
    topology = load_topology()
    config = UniswapV3Config(rpc_url=chain.rpc_url, deployment_file=chain.deployment_path)
    context = VenueContext(
        data_dir=tmp_path, assets={a.symbol: a for a in topology.assets}, read_only=True
    )
    venue = UniswapV3Venue(config, context)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
def whale(chain: DevChain) -> Iterator[Whale]:
    trader = Whale(Web3(Web3.HTTPProvider(chain.rpc_url)), chain)
    trader.fund()
    try:
        yield trader
    finally:
        trader.restore()


class Account:
    """The trader's footprint on chain: its nonce and its token balances."""

    def __init__(self, chain: DevChain) -> None:
        self.w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        self.chain = chain
        self.address = Web3.to_checksum_address(chain.deployment.trader)

    def footprint(self) -> tuple[int, dict[str, int]]:
        balances = {}
        for symbol, token in self.chain.deployment.tokens.items():
            contract = self.w3.eth.contract(
                address=Web3.to_checksum_address(token.address), abi=ERC20_ABI
            )
            balances[symbol] = int(contract.functions.balanceOf(self.address).call())
        return self.w3.eth.get_transaction_count(self.address, "pending"), balances


async def _buy(
    settings: Settings, pool: WorkerPool, db: asyncpg.Connection, weth: str
) -> tuple[ExecutionStep, dict[str, Any]]:
    """An ACQUIRE of ``weth`` WETH with USDC on ``uniswap_v3``, to its end: the plan's step
    and the fill's payload."""
    from tests.e2e.test_uniswap_e2e import _submit  # one producer helper for chain e2e tests

    run = uuid.uuid4().hex[:8]
    body = submission(
        load_topology(),
        "ACQUIRE",
        "WETH",
        "USDC",
        weth,
        strategy_id=f"paper-{run}",
        client_intent_id=run,
        max_slippage="0.01",
        time_window_ms=600_000,
        venues=[VENUE],
    )
    intent = await _submit(settings, body)
    outcome = await wait_until_finished(settings.postgres, [intent], timeout=120, pool=pool)
    events = (await events_by_intent(db, [intent]))[intent]
    assert outcome[intent] == "exec.completed", [(e["topic"], e["payload"]) for e in events]
    assert [e["topic"] for e in events] == COMPLETED_PATH
    payloads = {e["topic"]: orjson.loads(e["payload"]) for e in events}
    for topic in ("exec.started", "exec.step_submitted", "exec.step_filled", "exec.completed"):
        assert payloads[topic]["paper"] is True, topic  # every exec event says so
    (step,) = payloads["plan.created"]["plan"]["steps"]
    return ExecutionStep.model_validate(step), payloads["exec.step_filled"]


def _close(paper: Decimal, chain: Decimal) -> bool:
    """Within a millionth: rounding of the last base unit, both sides."""
    return abs(paper - chain) <= chain * Decimal("1e-6")


def _reserves(ledger: Path) -> dict[str, tuple[int, int]]:
    reader = Ledger.open_readonly(ledger)
    try:
        return {p.pool_id: (p.reserve0, p.reserve1) for p in reader.pools().values()}
    finally:
        reader.close()


async def _chain_reserves(venue: UniswapV3Venue) -> dict[str, tuple[int, int]]:
    states = await venue.reader.read()
    return {
        s.pool_id: virtual_reserves(s.liquidity or 0, s.sqrt_price_x96 or 0)
        for s in states
        if s.liquidity
    }


async def test_paper_fills_at_the_chain_price_send_nothing_and_follow_a_whale(
    paper: tuple[WorkerPool, Path],
    prepared: Settings,
    db: asyncpg.Connection,
    chain: DevChain,
    chain_venue: UniswapV3Venue,
    whale: Whale,
) -> None:
    pool, ledger = paper
    account = Account(chain)
    before = account.footprint()

    step, filled = await _buy(prepared, pool, db, "1.5")
    assert filled["venue"] == VENUE  # the name the intent allowed; its paper twin filled it
    assert Decimal(filled["amountOut"]) == Decimal("1.5")
    # QuoterV2 on chain, for the very step the planner made: the same USDC, to the unit.
    on_chain = await chain_venue.quote(step)
    assert _close(Decimal(filled["amountIn"]), on_chain), (filled["amountIn"], on_chain)
    assert account.footprint() == before  # no transaction, no token moved

    # A whale moves the chain's pools; the paper pools follow within a market tick.
    whale.push(Decimal(3150))  # every WETH/USDC pool to 3,150 USDC (from ~3,000)
    moved_at = time.monotonic()  # its block is mined
    wanted = await _chain_reserves(chain_venue)
    async with asyncio.timeout(TICK_S):
        while True:
            if {p: _reserves(ledger).get(p) for p in wanted} == wanted:
                break
            await asyncio.sleep(0.02)  # worker processes write it: nothing to wait on here
    followed_s = time.monotonic() - moved_at
    print(f"paper pools at the whale's prices {followed_s * 1000:.0f} ms after its swap")

    # The next paper fill is at the new chain price.
    step, filled = await _buy(prepared, pool, db, "1.5")
    on_chain = await chain_venue.quote(step)
    assert _close(Decimal(filled["amountIn"]), on_chain), (filled["amountIn"], on_chain)
    assert account.footprint() == before
