"""The engine inside the validate stage: own approvals count at once, run-time limits apply,
stale marks refuse, and the breakers publish their changes (in memory, no broker)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pipeline.codec import decode_event, encode_event
from pipeline.config import Settings
from pipeline.control.keys import limits_key, risk_key
from pipeline.control.publish import control_event
from pipeline.control.state import ControlState
from pipeline.models.control import RiskLimitsChanged, RiskStateChanged
from pipeline.models.events import Event, IntentSubmitted, make_event
from pipeline.models.intent import Intent
from pipeline.models.market import PoolState
from pipeline.risk.feed import MemoryRiskFeed
from pipeline.stages.base import Output, Record, StageContext
from pipeline.stages.validate import ValidateStage
from pipeline.topology.models import StrategyLimits, Topology
from tests.risk.risk_support import T0, TOPOLOGY, accepted, filled, intent

INGESTED = TOPOLOGY.stage("validate").inputs[0]

D = Decimal
VALIDATED = TOPOLOGY.stage("validate").events_topic


def topology(limits: StrategyLimits, **risk: object) -> Topology:
    return TOPOLOGY.model_copy(
        update={"risk": TOPOLOGY.risk.model_copy(update={"limits": limits, **risk})}
    )


def submitted(i: Intent) -> Event:
    return make_event(
        "intent.submitted",
        IntentSubmitted(intent=i),
        correlation_id=i.id,
        seq=1,
        causation_id=None,
        at_ms=T0,
        id_ms=T0,
    )


class Harness:
    def __init__(self, topo: Topology, tmp: Path, venues: dict[str, object] | None = None) -> None:
        self.control = ControlState()
        self.feed = MemoryRiskFeed(topo)
        self.published: list[Event] = []
        self.feed.attach({}, lambda _t, _k, v: self._publish(v))
        self.now = T0
        self.context = StageContext(
            topo,
            Settings(data_dir=tmp),
            venues=venues or {},  # type: ignore[arg-type]
            clock=lambda: self.now,
            control=self.control,
            risk=self.feed,
        )
        self.stage = ValidateStage(self.context, risk_checks=())
        self.offset = 0

    def _publish(self, value: bytes) -> None:
        event = decode_event(value)
        self.published.append(event)
        self.control.apply(event)

    async def validate(self, intents: Sequence[Intent]) -> list[Event]:
        records = []
        for i in intents:
            self.offset += 1
            records.append(
                Record(
                    INGESTED,
                    0,
                    self.offset,
                    T0,
                    i.id.encode(),
                    encode_event(submitted(i)),
                )
            )
        out: list[Output] = []

        async def emit(o: Output) -> None:
            out.append(o)

        await self.stage.process(records, emit)
        return [decode_event(o.value) for o in out if o.topic == VALIDATED]


def verdicts(events: list[Event]) -> list[str]:
    return [e.topic for e in events if e.topic.startswith("risk.")]


async def test_two_quick_intents_cannot_both_slip_under_a_limit(tmp_path: Path) -> None:
    h = Harness(topology(StrategyLimits(max_open_intents=1)), tmp_path)
    # In one batch: the first approval counts before the second is judged.
    out = await h.validate([intent(amount="0.1"), intent(amount="0.1")])
    assert verdicts(out) == ["risk.approved", "risk.rejected"]
    # In the next batch, before the book has read the approval back: still counted.
    out = await h.validate([intent(amount="0.1")])
    assert verdicts(out) == ["risk.rejected"]
    rejected = next(e for e in out if e.topic == "risk.rejected")
    assert (rejected.payload["rule"], rejected.payload["limit"], rejected.payload["actual"]) == (
        "max_open_intents",
        "1",
        "2",
    )


async def test_own_approvals_count_for_their_own_strategy_only_and_once(tmp_path: Path) -> None:
    h = Harness(topology(StrategyLimits(max_open_intents=2)), tmp_path)
    first = intent(amount="0.1", strategy="s1")
    out = await h.validate([first, intent(amount="0.1", strategy="s2")])
    assert verdicts(out) == ["risk.approved", "risk.approved"]
    # s2's pending approval does not count for s1: one more fits in s1, the next does not.
    out = await h.validate([intent(amount="0.1", strategy="s1"), intent(amount="0.1")])
    assert verdicts(out) == ["risk.approved", "risk.rejected"]
    # Read back through the book, an approval counts once (the book's, not also pending).
    h.feed.book.apply(accepted(first))
    out = await h.validate([intent(amount="0.1", strategy="s1")])
    assert verdicts(out) == ["risk.rejected"]
    assert next(e for e in out if e.topic == "risk.rejected").payload["actual"] == "3"


async def test_an_intent_another_worker_approved_counts_through_the_book(tmp_path: Path) -> None:
    h = Harness(topology(StrategyLimits(max_position=D(10_000))), tmp_path)
    elsewhere = intent(amount="3")  # accepted by another worker: 9,000 USDC of WETH open
    h.feed.book.apply(accepted(elsewhere))
    out = await h.validate([intent(amount="1")])
    assert verdicts(out) == ["risk.rejected"]
    assert out[0].payload["rule"] == "max_position"
    assert out[0].payload["actual"] == "12000.00"
    h.feed.book.apply(filled(elsewhere, "USDC", "9000", "WETH", "3"))  # now held, not open
    out = await h.validate([intent(amount="1")])
    assert out[0].payload["actual"] == "12000.00"


async def test_limits_changed_at_run_time_apply_to_the_next_intent(tmp_path: Path) -> None:
    h = Harness(topology(StrategyLimits()), tmp_path)
    assert verdicts(await h.validate([intent(amount="1")])) == ["risk.approved"]
    change = RiskLimitsChanged(
        strategy_id="s1", limits={"max_daily_notional": "100"}, actor="desk", reason="test"
    )
    h.control.apply(control_event(limits_key("s1"), "risk.limits_changed", change, 1, T0))
    out = await h.validate([intent(amount="1")])
    assert out[0].payload["rule"] == "max_daily_notional"


class Pools:
    """A venue whose pools the test sets (the sim venue's shape, no ledger)."""

    name = "sim"

    def __init__(self) -> None:
        self.fail = False

    async def pools(self) -> list[PoolState]:
        if self.fail:
            raise ConnectionError("venue away")
        return [
            PoolState(
                pool_id="p",
                venue="sim",
                chain_id=31337,
                token0="WETH",
                token1="USDC",
                reserve0=1000 * 10**18,
                reserve1=2_000_000 * 10**6,
                fee=30,
            )
        ]


async def test_marks_come_from_the_pools_and_a_stale_one_refuses(tmp_path: Path) -> None:
    venue = Pools()
    h = Harness(
        topology(StrategyLimits(), price_refresh_ms=0, price_max_age_ms=5_000),
        tmp_path,
        {"sim": venue},
    )
    out = await h.validate([intent(amount="1")])
    assert verdicts(out) == ["risk.approved"]
    assert out[0].payload["notional"] == "2000"  # the pool's mid, not the reference 3000
    venue.fail = True
    h.now += 6_000
    out = await h.validate([intent(amount="1")])
    assert out[0].payload["rule"] == "stale_price"
    assert (out[0].payload["limit"], out[0].payload["actual"]) == ("5000 ms", "6000 ms")


async def test_breakers_publish_epoch_then_transition_with_their_numbers(tmp_path: Path) -> None:
    limits = StrategyLimits(capital=D(10_000), reduce_at_loss=D(500), halt_at_loss=D(2000))
    h = Harness(
        topology(
            limits,
            global_=TOPOLOGY.risk.global_.model_copy(
                update={"reduce_at_loss": None, "halt_at_loss": None}
            ),
        ),
        tmp_path,
    )
    bought = intent(amount="1")
    h.feed.book.apply(accepted(bought))
    h.feed.book.apply(filled(bought, "USDC", "3600", "WETH", "1"))  # paid 3,600; marked 3,000
    engine = h.stage.risk
    await engine.prepare()
    (epoch,) = await engine.evaluate(h.now)
    record = epoch.payload_as(RiskStateChanged)
    # The first epoch starts from the capital: the fill before it counts.
    assert (record.rule, record.state, record.baseline_equity) == ("epoch", "NORMAL", D(10_000))
    assert record.equity == D(9400)
    (change,) = await engine.evaluate(h.now)
    record = change.payload_as(RiskStateChanged)
    assert (record.previous, record.state, record.rule) == ("NORMAL", "REDUCING", "reduce_at_loss")
    assert (record.pnl, record.limit, record.actual) == (D(-600), "500", "600")
    assert record.thresholds == {"reduce_at_loss": "500", "halt_at_loss": "2000"}
    assert await engine.evaluate(h.now) == []  # nothing new: states only escalate
    assert h.control.get(risk_key("strategy:s1")) == change
    # In REDUCING, the strategy's next purchase is refused, with the breaker's numbers.
    out = await h.validate([intent(amount="0.1")])
    assert out[0].payload["rule"] == "risk_state"
    assert "loss 600.00 USDC" in out[0].payload["message"]
    # Selling the long reduces exposure: it passes, though the strategy is REDUCING.
    out = await h.validate([intent("DISPOSE", amount="0.5")])
    assert verdicts(out) == ["risk.approved"]
