"""The strategy runner: market data and fills in, the enabled strategies' intents out.

Record shapes:
    in   sep.intents.ingested   key=intent_id    Event(intent.submitted): learn which intents
                                                 are the strategies' own
    in   sep.executions         key=intent_id    Event(exec.step_filled): a fill of one of them
                                                 (exec.completed | exec.failed | intent.expired:
                                                 forget it)
    in   sep.market.pools       key=venue/pool   PoolState JSON: a market update
    out  sep.intents.submitted  key=submission_key  IntentSubmission JSON, with the strategy id
                                                 and a deterministic client intent id (with
                                                 ``lanes.submit``: on the input lane topic of
                                                 its score, ``priority.submit_lanes``)

Per batch, in this order (so a strategy hears of its fills before it decides again):
    the control plane moved             --start / stop / rebuild strategies (``strategy_set``)
    intent.submitted of a strategy here --own.set(intent id, [strategy id, client id])
    exec.step_filled of an own intent   --strategy.on_fill(StrategyFill)
    each pool state, in record order    --latest[venue][pool] = state
                                        --each strategy.on_market(MarketSnapshot(at_ms=the
                                          record's timestamp)) --> submissions --> emit
                                          (dropped while its kill switch is engaged, or when
                                          the update is older than SEP_STRATEGY_MAX_LAG_MS)
    each strategy that KeepsState       --state.set(strategy id, its save_state()) if changed

The clock a strategy sees is the market record's timestamp, not the wall clock: a runner
that replays records after a crash shows the strategies the same moments again, so a
strategy whose client intent ids derive from them (dca: the interval index) re-submits the
same ids, and ingest's dedupe on (strategy id, client intent id) drops the copies.  A
submission without a client intent id gets one from the moment and its place in the list
(``<strategy id>-<at_ms>-<i>``), deterministic the same way.  An update older than
``SEP_STRATEGY_MAX_LAG_MS`` still feeds the strategies (features, intervals move on) but
what they return is dropped: a runner reading the market topic's history (a new consumer
group starts at its beginning) must not trade on the past.

Two changelog tables (they survive a restart), both partitioned like
``sep.intents.ingested``, the stage's first input:
    own intents  intent id -> [strategy id, client id], written from the intent's own
                 partition (``sep.executions`` shares it: both keyed by intent id); an entry
                 goes when its intent's execution ends (one rejected before execution stays)
    state        strategy id -> {"plugin", "state"}: a ``KeepsState`` strategy's
                 ``save_state()``, in partition 0 (the runner holds every partition), written
                 with the batch's intents and restored when the strategy is (re)built

Enabling, disabling and configuring: ``topology.yaml`` (``plugins.strategies``), then the
control plane (``sep.control``, key ``strategy/<id>``, read through ``StageContext.control``):
the runner compares the control plane's version at every batch, and the market ticks at
least every second, so a change is obeyed within a second of the worker reading it.  A
strategy whose run-time config its plugin refuses is logged and not started.

A disabled strategy that has run is *paused*, not forgotten: it no longer hears the market
(so it decides nothing), but the fills of its intents still in flight reach its ``on_fill``
and its state is saved, so enabled again it knows what it holds (momentum sizes and caps by
what its fills add up to).  A runner (re)started while a strategy is disabled builds it
paused when it has a saved state (it ran before); one that never ran is not built.

It runs as a singleton (``singleton: true`` in ``topology.yaml``): one process holding every
partition of its inputs, since every strategy must see every market update and every fill of
its intents (a consumer group would split them).  A second runner started waits as a hot
standby (``pipeline.runtime.delivery.singleton``).  A strategy that raises or returns
something else than ``IntentSubmission``s is logged and skipped for that update; the others
go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson
import pluggy
from pydantic import ValidationError

from pipeline.intent_ids import submission_key
from pipeline.market.feed import TOPIC as POOLS_TOPIC
from pipeline.models.control import StrategyChanged
from pipeline.models.events import Event, ExecStepFilled, IntentSubmitted
from pipeline.models.intent import IntentSubmission
from pipeline.models.market import PoolState
from pipeline.plugins.loading import make_plugin_manager
from pipeline.plugins.manager import build_strategy
from pipeline.plugins.strategy import JsonState, KeepsState, MarketSnapshot, Strategy, StrategyFill
from pipeline.priority.submit_lanes import SubmitLanes
from pipeline.stages.base import Emit, Output, Record, StageContext, event_of
from pipeline.stages.strategy_set import Wanted, strategy_ids_in, wanted_strategies
from pipeline.stages.table_names import STRATEGY_INTENTS, STRATEGY_STATE
from pipeline.topology.loader import TopologyError

log = logging.getLogger(__name__)

OWN_INTENTS = STRATEGY_INTENTS
"""The table of the strategies' own intents: intent id -> ``[strategy id, client id]``."""

ENDS = frozenset({"exec.completed", "exec.failed", "intent.expired"})
"""Execution events after which an intent has no more fills."""

STATE_PARTITION = 0


def _same(built: Wanted, want: Wanted) -> bool:
    """Whether a running strategy is what is wanted (else it is rebuilt)."""
    return built.plugin == want.plugin and dict(built.config) == dict(want.config)


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
    return Output(topic, submission_key(strategy_id, client_id).encode(), orjson.dumps(wire))


class StrategyRunnerStage:
    name = "strategy_runner"

    def __init__(
        self, context: StageContext, strategies: Mapping[str, Strategy] | None = None
    ) -> None:
        """``strategies`` by strategy id: fixed instances (tests), which the control plane
        can still disable and enable again; by default the runner builds what the topology
        and the control plane enable, with the installed plugins."""
        self._context = context
        self._topic = context.topology.stage(self.name).events_topic
        self._lanes = SubmitLanes(context.topology)
        """With ``lanes.submit``: each submission to its input lane topic."""
        self._source = context.topology.stage(self.name).inputs[0]
        self._fixed = dict(strategies) if strategies is not None else None
        self.strategies: dict[str, Strategy] = {}
        """The running ones, by strategy id."""
        self.paused: dict[str, Strategy] = {}
        """Disabled ones that ran: they hear the fills of their intents, not the market."""
        self._built_from: dict[str, Wanted] = {}
        self._own = context.table(
            OWN_INTENTS, "intent id -> [strategy id, client intent id] of the strategies' intents"
        )
        self._state = context.table(
            STRATEGY_STATE, "strategy id -> {plugin, state}: each strategy's saved state"
        )
        self._saved: dict[str, str] = {}
        self._plugins: pluggy.PluginManager | None = None
        """The plugin manager of the reconcile under way (see ``_reconcile``)."""
        self._stateful: dict[str, tuple[Strategy, KeepsState | None]] = {}
        """Per strategy id, its instance and the same as a ``KeepsState`` (``None``: it keeps
        none): asked once per instance, not at every batch (``isinstance`` against a
        runtime-checkable protocol is ~10 us; in a backtest every market event is a batch,
        after which every strategy's state is saved)."""
        """What was last written to the state table per strategy (skip unchanged writes)."""
        self._control_version: int | None = None
        self._pools: dict[str, dict[str, PoolState]] = {}
        self.submitted = 0
        self.fills = 0
        self.dropped_killed = 0
        self.dropped_stale = 0

    async def start(self) -> None:
        return None  # strategies start at the first batch: after the tables are recovered

    async def stop(self) -> None:
        for strategy_id in [*self.strategies, *self.paused]:
            await self._stop_strategy(strategy_id)

    def _built(self, strategy_id: str) -> Strategy | None:
        """The instance of ``strategy_id``, running or paused."""
        running = self.strategies.get(strategy_id)
        return running if running is not None else self.paused.get(strategy_id)

    async def process(self, records: Sequence[Record], emit: Emit) -> None:
        await self._reconcile()
        self._restore_recovered()
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
        self._save_states()

    # ------------------------------------------------------------------ strategies

    def wanted(self) -> dict[str, Wanted]:
        """What should run now: the topology, then the control plane's changes."""
        control = self._context.control
        changes: dict[str, StrategyChanged] = {}
        if control is not None:
            for strategy_id in strategy_ids_in(key for key, _ in control.items()):
                change = control.strategy(strategy_id)
                if change is not None:
                    changes[strategy_id] = change
        if self._fixed is not None:
            # Fixed instances: only on/off from the control plane, never rebuilt.
            return {
                sid: Wanted(
                    sid,
                    sid,
                    {},
                    changes[sid].enabled if sid in changes else True,
                    "control" if sid in changes else "topology",
                )
                for sid in self._fixed
            }
        return wanted_strategies(self._context.topology, changes)

    async def _reconcile(self) -> None:
        control = self._context.control
        version = control.version if control is not None else 0
        if version == self._control_version:
            return
        self._control_version = version
        # One plugin manager for the strategies this reconcile builds: making one loads
        # every plugin (~8 ms; a backtest's 50 strategies took 0.4 s), and a fresh one at
        # each reconcile still finds a plugin installed since.
        self._plugins = None
        wanted = self.wanted()
        for strategy_id in [*self.strategies, *self.paused]:
            if strategy_id not in wanted:  # gone from the topology and the control plane
                await self._stop_strategy(strategy_id)
        for strategy_id, want in wanted.items():
            built = self._built_from.get(strategy_id)
            if self._built(strategy_id) is not None and built is not None and _same(built, want):
                self._switch(strategy_id, want)
                continue
            never_ran = self._built(strategy_id) is None and self._state.get(strategy_id) is None
            if not want.enabled and never_ran:
                continue  # never ran here (or keeps no state): nothing of it to hear
            await self._start_strategy(want)

    def _switch(self, strategy_id: str, want: Wanted) -> None:
        """The same instance, enabled or paused as wanted."""
        self._built_from[strategy_id] = want
        if want.enabled and strategy_id in self.paused:
            self.strategies[strategy_id] = self.paused.pop(strategy_id)
            log.info("strategy enabled", extra={"strategy": strategy_id})
        elif not want.enabled and strategy_id in self.strategies:
            self.paused[strategy_id] = self.strategies.pop(strategy_id)
            log.info("strategy disabled (paused)", extra={"strategy": strategy_id})

    async def _start_strategy(self, want: Wanted) -> None:
        strategy_id = want.strategy_id
        previous = self._built(strategy_id)
        carried: JsonState | None = None
        if previous is not None:  # reconfigured: the new instance goes on from the old state
            if isinstance(previous, KeepsState):
                carried = previous.save_state()
            await self._stop_strategy(strategy_id, save=False)
        try:
            strategy = self._build(want)
            (self._context.settings.data_dir / "strategies" / strategy_id).mkdir(
                parents=True, exist_ok=True
            )
            await strategy.on_start()
        except TopologyError as exc:  # a run-time config its plugin refuses: said, not raised
            log.error(
                "strategy not started: %s",
                exc,
                extra={"strategy": strategy_id, "plugin": want.plugin},
            )
            return
        except Exception:
            log.exception(
                "strategy not started", extra={"strategy": strategy_id, "plugin": want.plugin}
            )
            return
        if isinstance(strategy, KeepsState):
            self._restore(strategy_id, want.plugin, strategy, carried)
        (self.strategies if want.enabled else self.paused)[strategy_id] = strategy
        self._built_from[strategy_id] = want
        log.info(
            "strategy started" if want.enabled else "strategy started paused (disabled)",
            extra={"strategy": strategy_id, "plugin": want.plugin, "source": want.source},
        )

    def _build(self, want: Wanted) -> Strategy:
        if self._fixed is not None:
            return self._fixed[want.strategy_id]
        context = self._context
        if self._plugins is None:
            self._plugins = make_plugin_manager()
        return build_strategy(
            context.topology,
            context.settings.data_dir,
            want.strategy_id,
            want.plugin,
            want.config,
            self._plugins,
        )

    async def _stop_strategy(self, strategy_id: str, *, save: bool = True) -> None:
        strategy = self._built(strategy_id)
        self.strategies.pop(strategy_id, None)
        self.paused.pop(strategy_id, None)
        self._built_from.pop(strategy_id, None)
        if strategy is None:
            return
        if save:
            self._save_state(strategy_id, strategy)
        self._stateful.pop(strategy_id, None)
        try:
            await strategy.on_stop()
        except Exception:
            log.exception("strategy failed to stop", extra={"strategy": strategy_id})

    # ------------------------------------------------------------------ state

    def _restore(
        self, strategy_id: str, plugin: str, strategy: KeepsState, carried: JsonState | None
    ) -> None:
        state = carried
        if state is None:
            saved = self._state.get(strategy_id)
            if saved is None:
                return
            entry = orjson.loads(saved)
            if entry.get("plugin") != plugin:
                log.warning(
                    "saved state of another plugin ignored",
                    extra={"strategy": strategy_id, "saved": entry.get("plugin"), "now": plugin},
                )
                return
            state = entry.get("state")
            self._saved[strategy_id] = saved
        try:
            strategy.restore_state(state if isinstance(state, dict) else {})
        except ValueError:
            log.exception(
                "saved state refused; the strategy starts afresh", extra={"strategy": strategy_id}
            )
            return
        log.info("strategy state restored", extra={"strategy": strategy_id})

    def _restore_recovered(self) -> None:
        """A state recovered after a partition moved here is newer than what runs."""
        for strategy_id in self._state.take_recovered():
            strategy = self._built(strategy_id)
            want = self._built_from.get(strategy_id)
            if strategy is not None and want is not None and isinstance(strategy, KeepsState):
                self._restore(strategy_id, want.plugin, strategy, None)

    def _save_states(self) -> None:
        for strategy_id, strategy in [*self.strategies.items(), *self.paused.items()]:
            self._save_state(strategy_id, strategy)

    def _keeper(self, strategy_id: str, strategy: Strategy) -> KeepsState | None:
        known = self._stateful.get(strategy_id)
        if known is None or known[0] is not strategy:
            known = (strategy, strategy if isinstance(strategy, KeepsState) else None)
            self._stateful[strategy_id] = known
        return known[1]

    def _save_state(self, strategy_id: str, strategy: Strategy) -> None:
        keeper = self._keeper(strategy_id, strategy)
        if keeper is None:
            return
        want = self._built_from.get(strategy_id)
        plugin = want.plugin if want is not None else strategy_id
        try:
            value = orjson.dumps({"plugin": plugin, "state": keeper.save_state()}).decode()
        except Exception:
            log.exception("strategy state not saved", extra={"strategy": strategy_id})
            return
        if value != self._saved.get(strategy_id):
            self._state.set(strategy_id, value, self._state_anchor)
            self._saved[strategy_id] = value

    @property
    def _state_anchor(self) -> Record:
        """Where state entries live: partition 0 of the table's source topic (the runner
        holds every partition, so any would do; one keeps them together)."""
        return Record(self._source, STATE_PARTITION, -1, 0, None, b"")

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
        if self._built(intent.strategy_id) is not None:
            value = orjson.dumps([intent.strategy_id, intent.client_intent_id]).decode()
            self._own.set(intent.id, value, record)

    def _fill(self, record: Record, event: Event) -> None:
        owned = self._own.get(event.correlation_id)
        if owned is None:
            return  # not a strategy's intent (or a strategy no longer enabled here)
        strategy_id, client_id = orjson.loads(owned)
        strategy = self._built(strategy_id)
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
        stale = at_ms < self._context.clock() - self._context.settings.strategy_max_lag_ms
        control = self._context.control
        for strategy_id, strategy in self.strategies.items():
            try:
                submissions = list(strategy.on_market(snapshot))
            except Exception:
                log.exception("strategy %r failed on the market update at %d", strategy_id, at_ms)
                continue
            if not submissions:
                continue
            if stale:
                self.dropped_stale += len(submissions)
                continue
            if control is not None and (kill := control.killed(strategy_id)) is not None:
                # It still hears the market (its features and intervals move on), but what it
                # decides while killed is not submitted, and not submitted later either.
                self.dropped_killed += len(submissions)
                log.info(
                    "strategy killed: submissions dropped",
                    extra={"strategy": strategy_id, "scope": kill.scope, "n": len(submissions)},
                )
                continue
            for i, submission in enumerate(submissions):
                if not isinstance(submission, IntentSubmission):
                    log.error(
                        "strategy %r returned %r, not an IntentSubmission", strategy_id, submission
                    )
                    continue
                topic = self._lanes.topic_of(submission) if self._lanes.enabled else self._topic
                outputs.append(submission_output(topic, strategy_id, submission, at_ms, i))
        self.submitted += len(outputs)
        return outputs


def build(context: StageContext) -> StrategyRunnerStage:
    return StrategyRunnerStage(context)
