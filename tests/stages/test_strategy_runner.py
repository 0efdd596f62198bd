"""The strategy runner as a pure processor: records in, submissions out, fills to their
strategy; then in memory with the real stages, dca's intents from pool updates to fills."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.control import keys
from pipeline.control.publish import control_event
from pipeline.control.state import ControlState
from pipeline.intent_ids import submission_key
from pipeline.market.feed import pool_key, pool_value
from pipeline.models.control import KillSwitchChanged, StrategyChanged
from pipeline.models.events import ExecCompleted, ExecStepFilled, IntentSubmitted, make_event
from pipeline.models.intent import Intent, IntentSubmission
from pipeline.models.market import PoolState
from pipeline.plugins import MarketSnapshot, StrategyFill, build_strategies
from pipeline.priority.submit_lanes import SubmitLanes
from pipeline.runtime.delivery.memory import build_memory_runtime
from pipeline.samples import submission
from pipeline.stages.base import MemoryTable, Output, Record, StageContext, now_ms
from pipeline.stages.strategy_runner import OWN_INTENTS, StrategyRunnerStage
from pipeline.stages.table_names import STRATEGY_STATE
from pipeline.topology import Topology, load_topology
from plugins.strategies.dca import Dca
from tests.lanes_support import lanes_on

HOUR = 3_600_000
T0 = 1_800_000_000_000  # a whole number of hours since the epoch
K0 = T0 // HOUR
DCA = {"asset": "WETH", "quote": "USDC", "amount": "100", "interval_ms": HOUR}


def topology_with_runner(dca: dict[str, Any] | None = None) -> Topology:
    """The repository's topology (the runner is a stage there), dca enabled, no chain venue."""
    data = load_topology().model_dump(by_alias=True)
    data["plugins"]["strategies"] = {"dca": {"config": dca or DCA}}
    data["plugins"]["venues"]["uniswap_v3"] = {"enabled": False}
    return Topology.model_validate(data)


TOPOLOGY = topology_with_runner()


class Tables:
    def __init__(self) -> None:
        self.made: dict[str, MemoryTable] = {}

    def __call__(self, name: str, help: str) -> MemoryTable:
        return self.made.setdefault(name, MemoryTable())


def runner(
    tmp_path: Path,
    strategies: dict[str, Any] | None = None,
    tables: Tables | None = None,
    control: ControlState | None = None,
    topology: Topology = TOPOLOGY,
) -> StrategyRunnerStage:
    # The records' clock (T0) is the runner's clock: nothing is stale.
    context = StageContext(
        topology=topology,
        settings=Settings(data_dir=tmp_path),
        table=tables or Tables(),
        control=control,
        clock=lambda: T0,
    )
    return StrategyRunnerStage(context, strategies)


def pool(at: int = 0, reserve0: int = 20_000 * 10**18) -> PoolState:
    return PoolState(
        pool_id="sim-weth-usdc-5",
        venue="sim",
        chain_id=31337,
        token0="WETH",
        token1="USDC",
        reserve0=reserve0,
        reserve1=60_000_000 * 10**6,
        fee=500,
        seq=at,
    )


def market(offset: int, at_ms: int, state: PoolState | None = None) -> Record:
    state = state or pool(offset)
    return Record("sep.market.pools", 0, offset, at_ms, pool_key(state), pool_value(state))


def event_record(topic: str, event: Any, offset: int, at_ms: int = T0) -> Record:
    return Record(topic, 3, offset, at_ms, event.correlation_id.encode(), encode_event(event))


async def run(stage: StrategyRunnerStage, records: Sequence[Record]) -> list[Output]:
    out: list[Output] = []

    async def emit(output: Output) -> None:
        out.append(output)

    await stage.process(records, emit)
    return out


def submitted(outputs: Sequence[Output]) -> list[IntentSubmission]:
    return [IntentSubmission.model_validate_json(o.value) for o in outputs]


async def test_pool_updates_drive_dca_one_submission_per_interval(tmp_path: Path) -> None:
    stage = runner(tmp_path)
    records = [market(i, at) for i, at in enumerate((T0, T0 + 5, T0 + HOUR, T0 + 2 * HOUR + 1))]
    outputs = await run(stage, records)
    subs = submitted(outputs)
    assert [(o.topic, o.key) for o in outputs] == [
        ("sep.intents.submitted", submission_key("dca", s.client_intent_id).encode()) for s in subs
    ]
    assert [s.client_intent_id for s in subs] == [f"dca-{K0}", f"dca-{K0 + 1}", f"dca-{K0 + 2}"]
    assert {s.strategy_id for s in subs} == {"dca"}
    assert stage.submitted == 3


async def test_a_restarted_runner_produces_the_same_records_again(tmp_path: Path) -> None:
    records = [market(i, at) for i, at in enumerate((T0, T0 + HOUR, T0 + HOUR + 7))]
    first = await run(runner(tmp_path), records)
    again = await run(runner(tmp_path), records)  # a new process replaying the same records
    assert [(o.key, o.value) for o in first] == [(o.key, o.value) for o in again]


async def test_the_snapshot_holds_the_latest_state_of_every_pool(tmp_path: Path) -> None:
    seen: list[MarketSnapshot] = []
    stage = runner(tmp_path, {"probe": Probe(seen)})
    other = pool().model_copy(update={"pool_id": "sim-weth-usdc-30", "fee": 3000})
    await run(stage, [market(0, T0), market(1, T0 + 1, other), market(2, T0 + 2, pool(9, 5))])
    assert [s.at_ms for s in seen] == [T0, T0 + 1, T0 + 2]
    latest = {p.pool_id: p.reserve0 for p in seen[-1].pools["sim"]}
    assert latest == {"sim-weth-usdc-5": 5, "sim-weth-usdc-30": 20_000 * 10**18}


class Probe:
    """A strategy that records what it is told and submits what it is given."""

    def __init__(
        self, seen: list[MarketSnapshot], submit: Sequence[Any] = (), fills: list[Any] | None = None
    ) -> None:
        self.seen = seen
        self.submit = submit
        self.fills = fills if fills is not None else []

    async def on_start(self) -> None:
        return None

    def on_market(self, snapshot: MarketSnapshot) -> Sequence[Any]:
        self.seen.append(snapshot)
        return self.submit

    def on_fill(self, fill: StrategyFill) -> None:
        self.fills.append(fill)

    async def on_stop(self) -> None:
        return None


class Broken(Probe):
    def on_market(self, snapshot: MarketSnapshot) -> Sequence[Any]:
        raise RuntimeError("a bug in a strategy")


async def test_the_runner_sets_the_strategy_id_and_derives_a_missing_client_id(
    tmp_path: Path,
) -> None:
    dca = build_strategies(TOPOLOGY, tmp_path)["dca"]
    assert isinstance(dca, Dca)
    intent = dca.buy(1)
    impostor = intent.model_copy(update={"strategy_id": "someone-else", "client_intent_id": None})
    stage = runner(
        tmp_path,
        {
            "broken": Broken([]),
            "mine": Probe([], [impostor, "not a submission", intent]),
        },
    )
    (first, second) = submitted(
        await run(stage, [market(0, T0), Record("sep.market.pools", 0, 1, T0, b"x", b"{")])
    )
    assert (first.strategy_id, first.client_intent_id) == ("mine", f"mine-{T0}-0")
    assert (second.strategy_id, second.client_intent_id) == ("mine", "dca-1")


def _intent_event(strategy_id: str, client_id: str, intent_id: str) -> Any:
    body = submission(
        TOPOLOGY,
        "DISPOSE",
        "USDC",
        "WETH",
        "100",
        strategy_id=strategy_id,
        client_intent_id=client_id,
    )
    intent = Intent.model_validate({**body, "id": intent_id, "createdAtMs": T0})
    return make_event(
        "intent.submitted",
        IntentSubmitted(intent=intent),
        correlation_id=intent_id,
        seq=1,
        causation_id=None,
        at_ms=T0,
        id_ms=T0,
    )


def _filled(intent_id: str, seq: int) -> Any:
    step = ExecStepFilled(
        plan_id="plan-1",
        step_id="s1",
        venue="sim",
        order_ref="r",
        asset_in="USDC",
        asset_out="WETH",
        amount_in=Decimal(100),
        amount_out=Decimal("0.03"),
    )
    return make_event(
        "exec.step_filled",
        step,
        correlation_id=intent_id,
        seq=seq,
        causation_id=None,
        at_ms=T0,
        id_ms=T0,
    )


async def test_fills_of_its_own_intents_reach_the_strategy(tmp_path: Path) -> None:
    fills: list[StrategyFill] = []
    tables = Tables()
    stage = runner(tmp_path, {"mine": Probe([], fills=fills)}, tables)
    own, foreign = "intent-01JAAAAAAAAAAAAAAAAAAAAAAA", "intent-01JBBBBBBBBBBBBBBBBBBBBBBB"
    done = make_event(
        "exec.completed",
        ExecCompleted(
            plan_id="plan-1",
            asset_in="USDC",
            asset_out="WETH",
            amount_in=Decimal(100),
            amount_out=Decimal("0.03"),
            realised_slippage=Decimal(0),
        ),
        correlation_id=own,
        seq=6,
        causation_id=None,
        at_ms=T0,
        id_ms=T0,
    )
    await run(
        stage,
        [
            # The fill comes first in the batch: the runner learns the intent is its own first.
            event_record("sep.executions", _filled(own, 5), 0),
            event_record("sep.executions", _filled(foreign, 5), 1),
            event_record("sep.intents.ingested", _intent_event("mine", "c-1", own), 0),
            event_record("sep.intents.ingested", _intent_event("other", "c-2", foreign), 1),
        ],
    )
    assert [(f.intent_id, f.client_intent_id, f.fill.amount_out) for f in fills] == [
        (own, "c-1", Decimal("0.03"))
    ]
    assert list(tables.made[OWN_INTENTS]) == [own]
    await run(stage, [event_record("sep.executions", done, 2)])
    assert list(tables.made[OWN_INTENTS]) == []  # its execution ended: no more fills


# ---------------------------------------------------------------- with the real stages


STAGES = ("strategy_runner", "ingest", "validate", "prioritise", "plan", "execute")


async def test_dca_intents_run_through_the_stages_in_memory_and_fill(tmp_path: Path) -> None:
    start = now_ms()
    dca = {**DCA, "interval_ms": 1000, "start_ms": start, "allowed_venues": ["sim"]}
    topology = topology_with_runner(dca)
    runtime, lifecycle = build_memory_runtime(topology, Settings(data_dir=tmp_path), STAGES)
    (stage,) = [p for p in lifecycle.processors if isinstance(p, StrategyRunnerStage)]
    await lifecycle.ensure_started()
    try:
        for i, at in enumerate((start, start + 300, start + 1000, start + 2500)):
            state = pool(i)
            runtime.feed("sep.market.pools", pool_key(state), pool_value(state), at)
        await runtime.run_until_idle()
        # A restarted runner would submit interval 1 again: a new record, the same client id.
        (again,) = [r for r in runtime.topics.log["sep.intents.submitted"] if b"dca-1" in r.value]
        runtime.feed("sep.intents.submitted", b"dca", again.value, now_ms() + 100)
        await runtime.run_until_idle()
        dca_strategy = stage.strategies["dca"]
    finally:
        await lifecycle.stop()
    assert stage.strategies == {}  # stopped with the runner
    log = runtime.topics.log
    ingested = [
        decode_event(r.value)
        for topic in topology.stage("validate").inputs  # every lane
        for r in log.get(topic, [])
    ]
    assert sorted(e.payload["intent"]["clientIntentId"] for e in ingested) == [
        "dca-0",
        "dca-1",
        "dca-2",
    ]
    assert {e.topic for e in ingested} == {"intent.submitted"}
    completed = [
        e for r in log["sep.executions"] if (e := decode_event(r.value)).topic == "exec.completed"
    ]
    assert {e.correlation_id for e in completed} == {e.correlation_id for e in ingested}
    assert isinstance(dca_strategy, Dca)
    assert dca_strategy.totals.fills == 3
    assert dca_strategy.totals.spent == Decimal(300)
    assert dca_strategy.totals.bought > 0
    assert runtime.fatal is None


@pytest.mark.parametrize("value", [b"", b"not json", orjson.dumps({"poolId": "x"})])
async def test_a_bad_pool_record_is_skipped(tmp_path: Path, value: bytes) -> None:
    seen: list[MarketSnapshot] = []
    stage = runner(tmp_path, {"probe": Probe(seen)})
    await run(stage, [Record("sep.market.pools", 0, 0, T0, b"sim/x", value), market(1, T0 + 1)])
    assert [s.at_ms for s in seen] == [T0 + 1]


async def test_malformed_events_are_skipped(tmp_path: Path) -> None:
    fills: list[StrategyFill] = []
    stage = runner(tmp_path, {"mine": Probe([], fills=fills)})
    own = "intent-01JAAAAAAAAAAAAAAAAAAAAAAA"
    good = _intent_event("mine", "c-1", own)
    bad_intent = good.model_copy(update={"payload": {"intent": {"id": own}}})
    filled = _filled(own, 5)
    bad_fill = filled.model_copy(update={"payload": {"planId": "p"}})
    await run(
        stage,
        [
            event_record("sep.intents.ingested", bad_intent, 0),
            Record("sep.intents.ingested", 3, 1, T0, b"k", b"not an event"),
            event_record("sep.intents.ingested", good, 2),
            event_record("sep.executions", bad_fill, 0),
            event_record("sep.executions", filled, 1),
        ],
    )
    assert [f.intent_id for f in fills] == [own]  # the good ones still went through


# ------------------------------------------------------- control plane and saved state


def strategy_change(
    strategy_id: str,
    seq: int,
    *,
    enabled: bool = True,
    config: dict[str, Any] | None = None,
    plugin: str | None = None,
) -> Any:
    kind = "strategy.configured" if config else f"strategy.{'en' if enabled else 'dis'}abled"
    payload = StrategyChanged(
        strategy_id=strategy_id,
        enabled=enabled,
        plugin=plugin,
        config=config or {},
        actor="ops",
        reason="test",
    )
    return control_event(keys.strategy_key(strategy_id), kind, payload, seq, T0)


def client_ids(outputs: Sequence[Output]) -> list[str]:
    return [s.client_intent_id or "" for s in submitted(outputs)]


async def test_disabling_stops_submissions_and_enabling_resumes_them(tmp_path: Path) -> None:
    control = ControlState()
    stage = runner(tmp_path, control=control)
    assert client_ids(await run(stage, [market(0, T0)])) == [f"dca-{K0}"]
    control.apply(strategy_change("dca", 1, enabled=False))
    assert await run(stage, [market(1, T0 + HOUR)]) == []
    assert "dca" not in stage.strategies
    control.apply(strategy_change("dca", 2, enabled=True))
    # Rebuilt from its saved state: interval K0 was bought, K0 + 2 is new.
    assert client_ids(await run(stage, [market(2, T0 + 2 * HOUR)])) == [f"dca-{K0 + 2}"]


async def test_a_disabled_strategy_still_hears_the_fills_of_its_intents(tmp_path: Path) -> None:
    """Disabled with an intent in flight, then enabled again: the fill that came in between
    is in its totals (a momentum strategy sizes and caps by what its fills add up to)."""
    control = ControlState()
    tables = Tables()
    stage = runner(tmp_path, tables=tables, control=control)
    own = "intent-01JAAAAAAAAAAAAAAAAAAAAAAA"
    await run(
        stage,
        [market(0, T0), event_record("sep.intents.ingested", _intent_event("dca", "c", own), 0)],
    )
    control.apply(strategy_change("dca", 1, enabled=False))
    assert await run(stage, [event_record("sep.executions", _filled(own, 5), 0)]) == []
    assert "dca" not in stage.strategies
    assert orjson.loads(tables.made[STRATEGY_STATE]["dca"])["state"]["fills"] == 1
    control.apply(strategy_change("dca", 2, enabled=True))
    await run(stage, [market(1, T0 + 5)])
    dca = stage.strategies["dca"]
    assert isinstance(dca, Dca)
    assert (dca.totals.fills, dca.totals.bought) == (1, Decimal("0.03"))


async def test_a_strategy_disabled_before_a_restart_hears_its_fills_after_it(
    tmp_path: Path,
) -> None:
    control = ControlState()
    tables = Tables()
    stage = runner(tmp_path, tables=tables, control=control)
    own = "intent-01JAAAAAAAAAAAAAAAAAAAAAAA"
    await run(
        stage,
        [market(0, T0), event_record("sep.intents.ingested", _intent_event("dca", "c", own), 0)],
    )
    control.apply(strategy_change("dca", 1, enabled=False))
    await run(stage, [market(1, T0 + 5)])
    again = runner(tmp_path, tables=tables, control=control)  # restarted while disabled
    assert await run(again, [event_record("sep.executions", _filled(own, 5), 0)]) == []
    assert orjson.loads(tables.made[STRATEGY_STATE]["dca"])["state"]["fills"] == 1


async def test_a_reconfigured_strategy_goes_on_from_its_state(tmp_path: Path) -> None:
    control = ControlState()
    stage = runner(tmp_path, control=control)
    await run(stage, [market(0, T0)])
    control.apply(strategy_change("dca", 1, config={**DCA, "amount": "250"}))
    # The same interval again: not bought twice by the new instance.
    assert await run(stage, [market(1, T0 + 5)]) == []
    (buy,) = submitted(await run(stage, [market(2, T0 + HOUR)]))
    assert buy.assets[0].amount == Decimal(250)
    assert buy.client_intent_id == f"dca-{K0 + 1}"


async def test_a_longer_interval_configured_at_run_time_goes_on_buying(tmp_path: Path) -> None:
    control = ControlState()
    stage = runner(tmp_path, control=control)
    assert client_ids(await run(stage, [market(0, T0 + 5)])) == [f"dca-{K0}"]
    control.apply(strategy_change("dca", 1, config={**DCA, "interval_ms": 2 * HOUR}))
    assert await run(stage, [market(1, T0 + 10)]) == []  # its two hours hold the last buy
    k2 = T0 // (2 * HOUR)
    assert client_ids(await run(stage, [market(2, T0 + 2 * HOUR)])) == [f"dca-{k2 + 1}"]


async def test_a_strategy_the_topology_lacks_can_be_enabled_at_run_time(tmp_path: Path) -> None:
    control = ControlState()
    stage = runner(tmp_path, control=control)
    control.apply(strategy_change("dca-btc", 1, plugin="dca", config={**DCA, "asset": "WBTC"}))
    control.apply(strategy_change("broken", 1, plugin="dca", config={**DCA, "asset": "NOPE"}))
    outputs = await run(stage, [market(0, T0)])
    assert sorted(client_ids(outputs)) == [f"dca-{K0}", f"dca-btc-{K0}"]
    assert set(stage.strategies) == {"dca", "dca-btc"}  # the refused config is not started
    btc = next(s for s in submitted(outputs) if s.strategy_id == "dca-btc")
    assert btc.assets[1].asset.symbol == "WBTC"


async def test_a_restarted_runner_restores_the_state_and_resubmits_nothing(
    tmp_path: Path,
) -> None:
    tables = Tables()  # the changelog both processes read
    records = [market(i, at) for i, at in enumerate((T0, T0 + HOUR, T0 + HOUR + 7))]
    first = await run(runner(tmp_path, tables=tables), records)
    assert client_ids(first) == [f"dca-{K0}", f"dca-{K0 + 1}"]
    saved = orjson.loads(tables.made[STRATEGY_STATE]["dca"])
    assert saved == {
        "plugin": "dca",
        "state": {
            "last_index": K0 + 1,
            "last_at_ms": T0 + HOUR,
            "interval_ms": HOUR,
            "start_ms": 0,
            "spent": "0",
            "bought": "0",
            "fills": 0,
        },
    }
    again = runner(tmp_path, tables=tables)  # kill -9, restart: the same records replayed
    assert await run(again, records) == []
    assert client_ids(await run(again, [market(3, T0 + 2 * HOUR)])) == [f"dca-{K0 + 2}"]


async def test_a_state_that_does_not_fit_starts_the_strategy_afresh(tmp_path: Path) -> None:
    tables = Tables()
    tables("sep-strategy-runner-state", "")["dca"] = '{"plugin": "dca", "state": {"x": 1}}'
    assert client_ids(await run(runner(tmp_path, tables=tables), [market(0, T0)])) == [f"dca-{K0}"]


async def test_a_killed_strategy_submits_nothing_and_does_not_catch_up(tmp_path: Path) -> None:
    control = ControlState()
    stage = runner(tmp_path, control=control)
    scope = keys.strategy_scope("dca")
    killed = KillSwitchChanged(scope=scope, actor="ops", reason="test")
    control.apply(control_event(keys.kill_key(scope), "control.killed", killed, 1, T0))
    assert await run(stage, [market(0, T0)]) == []
    assert stage.dropped_killed == 1
    control.apply(control_event(keys.kill_key(scope), "control.resumed", killed, 2, T0))
    assert await run(stage, [market(1, T0 + 9)]) == []  # interval K0 was decided while killed
    assert client_ids(await run(stage, [market(2, T0 + HOUR)])) == [f"dca-{K0 + 1}"]


async def test_updates_older_than_the_lag_bound_feed_the_strategy_but_submit_nothing(
    tmp_path: Path,
) -> None:
    stage = runner(tmp_path)
    old = T0 - Settings().strategy_max_lag_ms - 1
    assert await run(stage, [market(0, old - HOUR), market(1, old)]) == []
    assert stage.dropped_stale == 2
    assert client_ids(await run(stage, [market(2, T0)])) == [f"dca-{K0}"]


async def test_with_input_lanes_each_submission_goes_to_the_lane_its_score_gives(
    tmp_path: Path,
) -> None:
    data = lanes_on().model_dump(by_alias=True)
    data["plugins"]["strategies"] = {"dca": {"config": DCA}}
    data["plugins"]["venues"]["uniswap_v3"] = {"enabled": False}
    laned = Topology.model_validate(data)
    outputs = await run(runner(tmp_path, topology=laned), [market(0, T0), market(1, T0 + HOUR)])
    [sub] = submitted(outputs[:1])
    expected = SubmitLanes(laned).topic_of(sub)
    assert expected.startswith("sep.intents.submitted.")  # a lane, not the plain topic
    assert [(o.topic, o.key) for o in outputs] == [
        (expected, submission_key("dca", s.client_intent_id).encode()) for s in submitted(outputs)
    ]
