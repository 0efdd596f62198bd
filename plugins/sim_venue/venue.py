"""``SimVenue``: a simulated constant-product AMM venue behind the ``Venue`` protocol.

It behaves like a chain venue: ``submit`` accepts a step and hands back an order reference
at once; the step executes ``latency_ms`` after it was submitted, against the pools as they
are *then* (other fills may have moved them), and fails with ``slippage`` when the price
moved too far.  State lives in the ledger (``ledger.py``), so a restarted venue, or another
worker process, sees the same pools and submissions.

The SQLite calls are short and run inline on the event loop; under heavy contention from
other processes one can wait up to the ledger's busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple, TypeVar

from pydantic import ValidationError

from pipeline.ids import new_ulid
from pipeline.models.assets import Asset
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import Fill, StepRejected, Submission, TransientVenueError, VenueContext
from plugins.sim_venue.amm import (
    Hop,
    Pool,
    Swap,
    SwapError,
    check_route,
    swap_exact_in,
    swap_exact_out,
)
from plugins.sim_venue.config import SimVenueConfig
from plugins.sim_venue.flow import flow_trade, order_ref
from plugins.sim_venue.ledger import BUSY_TIMEOUT_MS, Ledger, NewSubmission, SubmissionRecord
from plugins.sim_venue.tick_batch import TickBatch
from plugins.sim_venue.units import from_units, to_units

VENUE_NAME = "sim"


def wall_clock_ms() -> float:
    return time.time() * 1000


def random_order_ref() -> str:
    return f"sim-{new_ulid()}"


class _Order(NamedTuple):
    """A step resolved against the asset registry, in base units.  (A named tuple: made
    for every step submitted, in ~0.3 us where a frozen dataclass took ~1.)"""

    step: ExecutionStep
    hops: tuple[Hop, ...]
    asset_in: Asset
    asset_out: Asset
    amount: int
    """EXACT_IN: what is spent. EXACT_OUT: what must be received."""
    limit: int
    """EXACT_IN: the least acceptable output. EXACT_OUT: the most that may be spent."""


LOCK_RETRY_FIRST_S = 0.0005
LOCK_RETRY_MAX_S = 0.01
T = TypeVar("T")


def _locked(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds what we need; try again."""
    text = str(exc)
    return "locked" in text or "busy" in text


class SimVenue:
    """The ``sim`` venue.  For a backtest (``pipeline.backtest``) three things are
    injectable: ``clock_ms`` (the wall clock by default), ``new_order_ref`` (a random ULID by
    default; a deterministic one makes a run repeat byte for byte) and ``wait_until`` (how a
    receipt waits for the simulated latency: by default it polls ``clock_ms`` in real time;
    a simulated clock advances itself to the due time instead)."""

    name = VENUE_NAME

    def __init__(
        self,
        config: SimVenueConfig,
        context: VenueContext,
        *,
        clock_ms: Callable[[], float] = wall_clock_ms,
        new_order_ref: Callable[[], str] = random_order_ref,
        wait_until: Callable[[float], Awaitable[None]] | None = None,
        name: str | None = None,
    ) -> None:
        # ``name``: another venue's (a paper twin takes the live venue's name); by default the
        # class's own, so a subclass naming itself (a second sim venue) keeps its name.
        self.name = name or type(self).name
        self.config = config
        self._assets: Mapping[str, Asset] = context.assets
        self._path = context.data_dir / config.ledger_file
        self._clock_ms = clock_ms
        self._new_order_ref = new_order_ref
        self._wait_until = wait_until
        self._seed: dict[str, Pool] = {}
        for pool in config.pools:
            reserve0, reserve1 = pool.base_reserves(context.assets)
            self._seed[pool.pool_id] = Pool(
                pool.pool_id, pool.token0, pool.token1, reserve0, reserve1, pool.fee
            )
        self._ledger: Ledger | None = None
        self._write_order = asyncio.Lock()
        # The submissions, and the receipts, of the plans executed side by side: one ledger
        # transaction for each group rather than one per step.
        self._inserts: TickBatch[NewSubmission, None] = TickBatch(self._insert)
        self._settles: TickBatch[str, SubmissionRecord | None] = TickBatch(self._settle)
        self._lookups: TickBatch[str, SubmissionRecord | None] = TickBatch(self._lookup)
        self._orders: dict[str, _Order] = {}
        """Steps this process submitted, by order ref, until their receipt, as resolved when
        they were submitted: not parsed back from the ledger's JSON, nor resolved again, to
        be executed and reported."""
        self._due: dict[str, float] = {}
        """When each of those is due: its receipt need not read the ledger first."""
        self._at_once = config.latency_ms == 0 and wait_until is None
        """No latency on the wall clock: a tick's submissions are due as they are stored, so
        the transaction that stores them runs them (``Ledger.add_and_settle``): a commit, a
        read and a batch of receipts less per tick than storing, then settling."""
        self._final: dict[str, SubmissionRecord] = {}
        """Submissions of this process made final as they were stored, until their receipt."""

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("the sim venue is not started (call start() first)")
        return self._ledger

    async def start(self) -> None:
        if self._ledger is None:
            self._ledger = Ledger.open(self._path, tuple(self._seed.values()))
            self._ledger.fail_when_locked()

    async def _write(self, operation: Callable[[], T]) -> T:
        """A ledger write, in the order the writes were asked for: the plans of a batch are
        priced in order (the planner counts each plan's effect on the next), so they must
        reach the ledger in that order even when one of them waits for the file's lock
        (asyncio's lock is first come, first served)."""
        async with self._write_order:
            return await self._unlocked(operation)

    async def _unlocked(self, operation: Callable[[], T]) -> T:
        """Run a ledger operation, waiting asynchronously while another worker holds the
        file's write lock.  SQLite's own busy handler sleeps in this thread: with two workers
        the event loop stood still 1-100 ms at a time, and every stage of the worker waited
        (submit -> plan.created p50 358 ms at 200 intents/s with two workers, 100 ms with
        one).  Each operation is one statement or one transaction, so a retry is whole."""
        delay = LOCK_RETRY_FIRST_S
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_RETRY_MAX_S)

    async def stop(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    # ------------------------------------------------------------------------- market

    async def pools(self) -> list[PoolState]:
        """The configured pools with their current reserves (base units); ``seq`` is the
        last fill that moved each (a fill reported ``landed_at <= seq`` is in the state)."""
        current = await self._unlocked(self.ledger.pools)
        return [
            PoolState(
                pool_id=p.pool_id,
                venue=self.name,
                chain_id=self._assets[p.token0].chain_id,
                token0=p.token0,
                token1=p.token1,
                reserve0=p.reserve0,
                reserve1=p.reserve1,
                fee=p.fee,
                seq=p.seq,
            )
            for p in (current[pool_id] for pool_id in self._pool_ids(current))
        ]

    def _pool_ids(self, current: Mapping[str, Pool]) -> Iterable[str]:
        """The pools it exposes: the configured ones (a paper twin: every pool its market
        has shown, ``plugins.sim_venue.paper``)."""
        return self._seed

    async def set_pools(self, states: Sequence[PoolState]) -> None:
        """Move the pools to these states' reserves (the market moved them: a backtest
        replays recorded or generated pool states).  Only reserves are taken; tokens and fee
        are the configuration's."""
        reserves = [(s.pool_id, s.reserve0, s.reserve1) for s in states]
        await self._write(lambda: self.ledger.set_reserves(reserves))

    async def quote(self, step: ExecutionStep) -> Decimal:
        """EXACT_IN: what ``amount_in`` buys now. EXACT_OUT: what ``amount_out`` costs now.

        Ignores the step's slippage limit: a quote says what would happen, not whether it is
        acceptable.
        """
        pools = await self._unlocked(self.ledger.pools)
        try:
            order = self._order(step, pools)
            swap = self._swap(order, pools, enforce_limit=False)
        except SwapError as exc:
            raise StepRejected(self.name, exc.reason, exc.detail) from exc
        if step.mode is SwapMode.EXACT_IN:
            return from_units(swap.amount_out, order.asset_out.decimals)
        return from_units(swap.amount_in, order.asset_in.decimals)

    async def trade_flow(self) -> list[str]:
        """This tick's trades of the rest of the market (``config.flow``), each made once
        however many processes ask; the order refs of the trades made (by anyone) this tick.
        Nothing when no flow is configured."""
        flow = self.config.flow
        if flow is None:
            return []
        now = self._clock_ms()
        tick = int(now // flow.every_ms)
        pools = await self._unlocked(self.ledger.pools)
        news: list[NewSubmission] = []
        for pool_id in flow.pools or tuple(self._seed):
            trade = flow_trade(flow, pools[pool_id], tick)
            if trade is None:
                continue
            asset_in, asset_out = self._assets[trade.token_in], self._assets[trade.token_out]
            amount = from_units(trade.amount_in, asset_in.decimals)
            ref = order_ref(pool_id, tick)
            leg = RouteLeg(
                pool_id=pool_id,
                venue=self.name,
                token_in=trade.token_in,
                token_out=trade.token_out,
                amount_in=trade.amount_in,
                amount_out=0,
            )
            step = ExecutionStep(
                step_id=ref,
                venue=self.name,
                mode=SwapMode.EXACT_IN,
                legs=(leg,),
                asset_in=asset_in.symbol,
                asset_out=asset_out.symbol,
                amount_in=amount,
                min_out=Decimal(0),
                amount_out=Decimal(0),
                max_in=amount,
            )
            news.append(NewSubmission(ref, ref, step.model_dump_json(), now, now))
        if not news:
            return []
        await self._write(lambda: self.ledger.add_submissions(news, once=True))
        refs = [n.order_ref for n in news]
        await self._write(lambda: self.ledger.settle_many(refs, now, self._execute))
        return refs

    # ------------------------------------------------------------------------- execution

    async def lookup(self, step_id: str) -> Submission | None:
        record = await self._lookups(step_id)
        return None if record is None else Submission(record.step_id, record.order_ref)

    async def _lookup(self, step_ids: list[str]) -> list[SubmissionRecord | None]:
        found = await self._unlocked(lambda: self.ledger.first_submissions(step_ids))
        return [found.get(step_id) for step_id in step_ids]

    async def submit(self, step: ExecutionStep) -> Submission:
        """Accept ``step``; it executes ``latency_ms`` from now.

        Never deduplicates on ``step_id`` (a real venue cannot either): the executor calls
        ``lookup`` first.  What can be checked without the pools' state (venue, assets,
        route, amounts) is rejected here, as a node rejects a malformed transaction.
        ``step.not_before_ms`` is the executor's to honour: the venue executes what it is sent.
        """
        try:
            order = self._order(step, await self._known_pools())
        except SwapError as exc:
            raise StepRejected(self.name, exc.reason, exc.detail) from exc
        submitted_ms = self._clock_ms()
        order_ref = self._new_order_ref()
        due_ms = submitted_ms + self.config.latency_ms
        self._orders[order_ref] = order
        try:
            await self._inserts(
                NewSubmission(order_ref, step.step_id, step.model_dump_json(), submitted_ms, due_ms)
            )
        except BaseException:
            self._orders.pop(order_ref, None)
            raise
        if order_ref not in self._final:
            self._due[order_ref] = due_ms
        return Submission(step.step_id, order_ref)

    async def _known_pools(self) -> Mapping[str, Pool]:
        """The pools a submission may name (their reserves are not read): the configured
        ones, without a ledger read."""
        return self._seed

    async def _insert(self, submissions: list[NewSubmission]) -> list[None]:
        if not self._at_once:
            await self._write(lambda: self.ledger.add_submissions(submissions))
            return [None] * len(submissions)
        settled = await self._write(
            lambda: self.ledger.add_and_settle(submissions, self._clock_ms(), self._execute)
        )
        for new in submissions:
            record = settled.get(new.order_ref)
            if record is not None:
                self._final[new.order_ref] = record
        return [None] * len(submissions)

    async def _settle(self, order_refs: list[str]) -> list[SubmissionRecord | None]:
        records = await self._write(
            lambda: self.ledger.settle_many(order_refs, self._clock_ms(), self._execute)
        )
        return [records.get(ref) for ref in order_refs]

    async def wait_receipt(self, submission: Submission, timeout_s: float) -> Fill:
        """Wait until the submission is final and return its fill; ``StepRejected`` if it failed.

        The latency counts from the submission time in the ledger, so after a restart the
        wait is only what remains.  A final submission returns its recorded outcome and is
        never executed again.  ``TransientVenueError("receipt_timeout")`` if it is not final
        within ``timeout_s``; waiting again later is safe.
        """
        record = self._final.pop(submission.order_ref, None)
        if record is not None and record.step_id == submission.step_id:
            return self._receipt(record, submission)
        record = None
        due_ms = self._due.get(submission.order_ref)
        mine = self._orders.get(submission.order_ref)
        if due_ms is None or mine is None or mine.step.step_id != submission.step_id:
            # Not submitted by this process (or before a restart): the ledger says where it is.
            found = await self._unlocked(lambda: self.ledger.submission(submission.order_ref))
            if found is None or found.step_id != submission.step_id:
                raise StepRejected(
                    self.name,
                    "unknown_order",
                    f"no submission {submission.order_ref!r} of step {submission.step_id!r}",
                )
            record = found
            due_ms = found.due_ms if found.status == "pending" else None
        if due_ms is not None:  # pending
            await self._until(due_ms, timeout_s, submission)
            record = await self._settles(submission.order_ref)
            if record is None:  # only if someone deleted it from the file under us
                raise StepRejected(self.name, "unknown_order", submission.order_ref)
        assert record is not None
        return self._receipt(record, submission)

    def _receipt(self, record: SubmissionRecord, submission: Submission) -> Fill:
        """A final record as the fill ``wait_receipt`` returns (``StepRejected``: failed)."""
        self._due.pop(record.order_ref, None)
        if record.status == "failed":
            self._orders.pop(record.order_ref, None)
            raise StepRejected(self.name, record.reason or "failed", record.detail or "")
        if record.amount_in is None or record.amount_out is None:
            raise TransientVenueError(
                self.name, "receipt_timeout", f"{submission.order_ref} is still pending"
            )
        order = self._orders.pop(record.order_ref, None)
        if order is not None:
            decimals_in, decimals_out = order.asset_in.decimals, order.asset_out.decimals
        else:
            step = ExecutionStep.model_validate_json(record.step_json)
            decimals_in = self._assets[step.asset_in].decimals
            decimals_out = self._assets[step.asset_out].decimals
        return Fill(
            step_id=record.step_id,
            order_ref=record.order_ref,
            amount_in=from_units(record.amount_in, decimals_in),
            amount_out=from_units(record.amount_out, decimals_out),
            landed_at=record.fill_seq,
        )

    def fill_counts(self) -> dict[str, int]:
        """Fills per step id (more than one: the step was executed twice)."""
        return self.ledger.fill_counts()

    def total_fills(self) -> int:
        return self.ledger.total_fills()

    # ------------------------------------------------------------------------- internals

    async def _until(self, due_ms: float, timeout_s: float, submission: Submission) -> None:
        if self._wait_until is not None:  # a simulated clock: it moves itself there
            await self._wait_until(due_ms)
            return
        deadline = time.monotonic() + timeout_s
        while (now := self._clock_ms()) < due_ms:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientVenueError(
                    self.name,
                    "receipt_timeout",
                    f"{submission.order_ref} not final after {timeout_s}s",
                )
            await asyncio.sleep(min((due_ms - now) / 1000, left))

    def _execute(self, record: SubmissionRecord, pools: Mapping[str, Pool]) -> Swap:
        """The ledger's executor: run a stored step against the pools as they are now."""
        injected = self.config.inject_failures
        if injected is not None and injected.fails(record.number):
            raise SwapError(
                injected.reason,
                f"injected failure: submission {record.number} is among numbers "
                f"{injected.after + 1}..{injected.after + injected.first} "
                "(plugins.venues.sim.config.inject_failures)",
            )
        order = self._orders.get(record.order_ref)
        if order is None:  # submitted by another process, or before a restart
            try:
                step = ExecutionStep.model_validate_json(record.step_json)
            except ValidationError as exc:
                raise SwapError("invalid_step", f"stored step does not parse: {exc}") from exc
            order = self._order(step, pools)
        else:
            # Resolved at submission; only the route is checked again, against the pools
            # as they are now (venue, assets and amounts cannot have changed).
            check_route(pools, order.hops, order.step.asset_in, order.step.asset_out)
        return self._swap(order, pools, enforce_limit=True)

    def _asset(self, symbol: str) -> Asset:
        asset = self._assets.get(symbol)
        if asset is None:
            raise SwapError("unknown_asset", f"no asset {symbol!r} in the registry")
        return asset

    def _order(self, step: ExecutionStep, pools: Mapping[str, Pool]) -> _Order:
        name, hops = self.name, []
        wrong = step.venue != name
        for leg in step.legs:  # a loop, not two generators: every step submitted comes here
            wrong = wrong or leg.venue != name
            hops.append(Hop(leg.pool_id, leg.token_in, leg.token_out))
        if wrong:
            raise SwapError("wrong_venue", f"step {step.step_id} is not for venue {self.name!r}")
        asset_in, asset_out = self._asset(step.asset_in), self._asset(step.asset_out)
        check_route(pools, hops, step.asset_in, step.asset_out)
        if step.mode is SwapMode.EXACT_IN:
            # Spend no more than given; receive no less than the floor (round it up).
            amount = to_units(step.amount_in, asset_in.decimals)
            limit = to_units(step.min_out, asset_out.decimals, round_up=True)
        else:
            # Receive at least what is wanted; spend no more than the ceiling (round it down).
            amount = to_units(step.amount_out, asset_out.decimals, round_up=True)
            limit = to_units(step.max_in, asset_in.decimals)
        if amount <= 0:
            raise SwapError("zero_amount", f"step {step.step_id} moves less than one base unit")
        return _Order(step, tuple(hops), asset_in, asset_out, amount, limit)

    def _swap(self, order: _Order, pools: Mapping[str, Pool], *, enforce_limit: bool) -> Swap:
        if order.step.mode is SwapMode.EXACT_IN:
            swap = swap_exact_in(pools, order.hops, order.amount)
            if enforce_limit and swap.amount_out < order.limit:
                raise SwapError(
                    "slippage",
                    f"would receive {swap.amount_out} base units of "
                    f"{order.asset_out.symbol}, min_out is {order.limit}",
                )
        else:
            swap = swap_exact_out(pools, order.hops, order.amount)
            if enforce_limit and swap.amount_in > order.limit:
                raise SwapError(
                    "slippage",
                    f"would spend {swap.amount_in} base units of "
                    f"{order.asset_in.symbol}, max_in is {order.limit}",
                )
        return swap
