"""The strategy runner: market data and fills in, the enabled strategies' intents out.

Record shapes:
    in   sep.intents.ingested   key=intent_id    Event(intent.submitted): learn which intents
                                                 are the strategies' own
    in   sep.executions         key=intent_id    Event(exec.step_filled): a fill of one of them
                                                 (exec.completed | exec.failed | intent.expired:
                                                 forget it)
    in   sep.market.pools       key=venue/pool   PoolState JSON: a market update
    out  sep.intents.submitted  key=strategy_id  IntentSubmission JSON, with the strategy id
                                                 and a deterministic client intent id

Per batch, in this order (so a strategy hears of its fills before it decides again):
    intent.submitted of a strategy here --own.set(intent id, [strategy id, client id])
    exec.step_filled of an own intent   --strategy.on_fill(StrategyFill)
    each pool state, in record order    --latest[venue][pool] = state
                                        --each strategy.on_market(MarketSnapshot(at_ms=the
                                          record's timestamp)) --> submissions --> emit

The clock a strategy sees is the market record's timestamp, not the wall clock: a runner
that replays records after a crash shows the strategies the same moments again, so a
strategy whose client intent ids derive from them (dca: the interval index) re-submits the
same ids, and ingest's dedupe on (strategy id, client intent id) drops the copies.  A
submission without a client intent id gets one from the moment and its place in the list
(``<strategy id>-<at_ms>-<i>``), deterministic the same way.

Which intents are a strategy's own lives in a table (its changelog survives a restart), keyed
by intent id and written from ``sep.intents.ingested``'s partition, which ``sep.executions``
shares (both keyed by intent id): so that topic is the stage's first input, and the table is
partitioned like it.  An entry goes when its intent's execution ends; one rejected before
execution (risk, plan) stays.  A strategy's own state (dca's last interval) is in memory:
after a restart it starts afresh, and dedupe keeps that from buying twice.

Run it in one process holding every partition of its inputs: every strategy must see every
market update and every fill of its intents.  A consumer group of several workers would split
them (``sep.market.pools`` has one partition, so only one worker would hear the market, while
the fills would be spread over all), so declaring the stage in ``topology.yaml`` needs a
singleton worker for it first; until then it runs in memory (``build_memory_runtime``).
A strategy that raises or returns something else than ``IntentSubmission``s is logged and
skipped for that update; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson
from pydantic import ValidationError

from pipeline.market.feed import TOPIC as POOLS_TOPIC
from pipeline.models.events import Event, ExecStepFilled, IntentSubmitted
from pipeline.models.intent import IntentSubmission
from pipeline.models.market import PoolState
from pipeline.plugins.manager import build_strategies
from pipeline.plugins.strategy import MarketSnapshot, Strategy, StrategyFill
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.table_names import STRATEGY_INTENTS

log = logging.getLogger(__name__)

OWN_INTENTS = STRATEGY_INTENTS
"""The table of the strategies' own intents: intent id -> ``[strategy id, client id]``."""

ENDS = frozenset({"exec.completed", "exec.failed", "intent.expired"})
"""Execution events after which an intent has no more fills."""


def derived_client_id(strategy_id: str, at_ms: int, index: int) -> str:
    """The client intent id of a submission its strategy left without one."""
    return f"{strategy_id}-{at_ms}-{index}"


def submission_output(
    topic: str, strategy_id: str, submission: IntentSubmission, at_ms: int, index: int
) -> Output:
    """``submission`` as the record the runner produces: the strategy id set (a strategy
    cannot submit for another), the client intent id kept or derived."""
    client_id = submission.client_intent_id or derived_client_id(strategy_id, at_ms, index)
    wire = submission.model_copy(
        update={"strategy_id": strategy_id, "client_intent_id": client_id}
    ).to_wire()
    return Output(topic, strategy_id.encode(), orjson.dumps(wire))


class StrategyRunnerStage:
    name = "strategy_runner"

    def __init__(
        self, context: StageContext, strategies: Mapping[str, Strategy] | None = None
    ) -> None:
        """``strategies`` by strategy id; by default the ones the topology enables."""
        self._context = context
        self._topic = context.topology.stage(self.name).events_topic
        if strategies is None:
            strategies = build_strategies(context.topology, context.settings.data_dir)
        self.strategies = dict(strategies)
        self._own = context.table(
            OWN_INTENTS, "intent id -> [strategy id, client intent id] of the strategies' intents"
        )
        self._pools: dict[str, dict[str, PoolState]] = {}
        self.submitted = 0
        self.fills = 0

    async def start(self) -> None:
        for strategy_id, strategy in self.strategies.items():
            (self._context.settings.data_dir / "strategies" / strategy_id).mkdir(
                parents=True, exist_ok=True
            )
            await strategy.on_start()

    async def stop(self) -> None:
        for strategy in self.strategies.values():
            await strategy.on_stop()

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        market: list[Record] = []
        events: list[tuple[Record, Event]] = []
        for record in records:
            if record.topic == POOLS_TOPIC:
                market.append(record)
            elif (event := self._event(record)) is not None:
                events.append((record, event))
        # intent.submitted before the fills of the same batch: ingested is read before
        # executions in the topic lists, but a batch may hold both.
        for record, event in events:
            if event.topic == "intent.submitted":
                self._claim(record, event)
        for record, event in events:
            if event.topic == "exec.step_filled":
                self._fill(record, event)
            elif event.topic in ENDS:
                self._own.delete(event.correlation_id, record.partition)
        for record in market:
            if self._apply(record):
                for output in self._on_market(record.timestamp_ms):
                    await emit(output)

    # ------------------------------------------------------------------ events

    @staticmethod
    def _event(record: Record) -> Event | None:
        try:
            return event_of(record)
        except ValidationError:
            log.warning("undecodable event skipped at %s/%s", record.topic, record.offset)
            return None

    def _claim(self, record: Record, event: Event) -> None:
        try:
            intent = event.payload_as(IntentSubmitted).intent
        except ValidationError:
            log.warning("malformed intent.submitted skipped at %s/%s", record.topic, record.offset)
            return
        if intent.strategy_id in self.strategies:
            value = orjson.dumps([intent.strategy_id, intent.client_intent_id]).decode()
            self._own.set(intent.id, value, record)

    def _fill(self, record: Record, event: Event) -> None:
        owned = self._own.get(event.correlation_id)
        if owned is None:
            return  # not a strategy's intent (or a strategy no longer enabled here)
        strategy_id, client_id = orjson.loads(owned)
        strategy = self.strategies.get(strategy_id)
        if strategy is None:
            return
        try:
            step = event.payload_as(ExecStepFilled)
        except ValidationError:
            log.warning("malformed exec.step_filled skipped at %s/%s", record.topic, record.offset)
            return
        fill = StrategyFill(event.correlation_id, client_id, step, record.timestamp_ms)
        try:
            strategy.on_fill(fill)
        except Exception:
            log.exception("strategy %r failed on a fill of %s", strategy_id, fill.intent_id)
        self.fills += 1

    # ------------------------------------------------------------------ market

    def _apply(self, record: Record) -> bool:
        """Take the pool state in; False if the record holds none (a tombstone, garbage)."""
        if not record.value:
            return False
        try:
            state = PoolState.model_validate_json(record.value)
        except ValidationError as exc:
            log.warning(
                "pool state skipped at %s/%s: %s", record.topic, record.offset, exc.errors()[:1]
            )
            return False
        self._pools.setdefault(state.venue, {})[state.pool_id] = state
        return True

    def snapshot(self, at_ms: int) -> MarketSnapshot:
        pools = {venue: tuple(states.values()) for venue, states in self._pools.items()}
        return MarketSnapshot(at_ms=at_ms, pools=pools, books={})

    def _on_market(self, at_ms: int) -> list[Output]:
        snapshot = self.snapshot(at_ms)
        outputs: list[Output] = []
        for strategy_id, strategy in self.strategies.items():
            try:
                submissions = list(strategy.on_market(snapshot))
            except Exception:
                log.exception("strategy %r failed on the market update at %d", strategy_id, at_ms)
                continue
            for i, submission in enumerate(submissions):
                if not isinstance(submission, IntentSubmission):
                    log.error(
                        "strategy %r returned %r, not an IntentSubmission", strategy_id, submission
                    )
                    continue
                outputs.append(submission_output(self._topic, strategy_id, submission, at_ms, i))
        self.submitted += len(outputs)
        return outputs


def build(context: StageContext) -> StrategyRunnerStage:
    return StrategyRunnerStage(context)
