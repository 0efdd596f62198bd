"""The built-in dca strategy: its config at YAML paths, and which intents it emits when."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.models.events import ExecStepFilled
from pipeline.models.intent import IntentType
from pipeline.plugins import MarketSnapshot, StrategyFill, build_strategies, check_plugins
from pipeline.plugins.manager import make_plugin_manager, strategy_specs
from pipeline.topology import Topology, load_topology
from pipeline.topology.loader import TopologyError
from plugins.strategies.dca import Dca, DcaConfig, client_intent_id

TOPOLOGY = load_topology()
HOUR = 3_600_000
T0 = 1_800_000_000_000  # a whole number of hours since the epoch
CONFIG = {"asset": "WETH", "quote": "USDC", "amount": "100", "interval_ms": HOUR}


def _topology_with(config: dict[str, object]) -> Topology:
    """The repository's topology with dca enabled under ``config``."""
    data = TOPOLOGY.model_dump(by_alias=True)
    data["plugins"]["strategies"] = {"dca": {"config": config}}
    return Topology.model_validate(data)


def dca(tmp_path: Path, **overrides: object) -> Dca:
    strategies = build_strategies(_topology_with({**CONFIG, **overrides}), tmp_path)
    strategy = strategies["dca"]
    assert isinstance(strategy, Dca)
    return strategy


def snapshot(at_ms: int) -> MarketSnapshot:
    return MarketSnapshot(at_ms=at_ms, pools={}, books={})


def test_dca_is_a_builtin_strategy() -> None:
    spec = strategy_specs(make_plugin_manager())["dca"]
    assert spec.config_model is DcaConfig


def test_one_buy_per_interval_at_the_first_update_in_it(tmp_path: Path) -> None:
    strategy = dca(tmp_path)
    emitted = [
        [(s.client_intent_id, s.type) for s in strategy.on_market(snapshot(at))]
        for at in (T0, T0 + 1, T0 + HOUR - 1, T0 + HOUR, T0 + HOUR + 5, T0 + 3 * HOUR)
    ]
    k = T0 // HOUR
    assert emitted == [
        [(f"dca-{k}", IntentType.DISPOSE)],
        [],
        [],
        [(f"dca-{k + 1}", IntentType.DISPOSE)],
        [],
        [(f"dca-{k + 3}", IntentType.DISPOSE)],  # interval k + 2 had no update: skipped
    ]


def test_an_old_update_after_a_newer_one_buys_nothing(tmp_path: Path) -> None:
    strategy = dca(tmp_path)
    assert len(strategy.on_market(snapshot(T0 + HOUR))) == 1
    assert strategy.on_market(snapshot(T0)) == []


def test_the_buy_spends_the_quote_amount_on_the_asset(tmp_path: Path) -> None:
    strategy = dca(
        tmp_path, amount="250.5", max_slippage="0.02", time_window_ms=60_000, allowed_venues=["sim"]
    )
    (intent,) = strategy.on_market(snapshot(T0))
    assert intent.strategy_id == "dca"
    assert intent.type is IntentType.DISPOSE  # sell exactly the quote amount
    assert intent.assets[0].asset.symbol == "USDC"
    assert intent.assets[0].amount == Decimal("250.5")
    assert intent.assets[1].asset.symbol == "WETH"
    assert intent.assets[1].amount is None
    assert intent.constraints.max_slippage == Decimal("0.02")
    assert intent.constraints.time_window_ms == 60_000
    assert intent.constraints.allowed_venues == ("sim",)


def test_a_restarted_strategy_submits_the_same_client_id_for_the_same_interval(
    tmp_path: Path,
) -> None:
    before = dca(tmp_path).on_market(snapshot(T0 + 10))
    after = dca(tmp_path).on_market(snapshot(T0 + HOUR - 10))  # a new process, same interval
    assert [s.client_intent_id for s in before] == [s.client_intent_id for s in after]
    assert before == after
    assert client_intent_id("dca", T0 // HOUR) == f"dca-{T0 // HOUR}"


def test_intervals_count_from_start_ms_and_stop_after_max_buys(tmp_path: Path) -> None:
    strategy = dca(tmp_path, start_ms=T0 + 30 * 60_000, max_buys=2)
    ids = [
        [s.client_intent_id for s in strategy.on_market(snapshot(at))]
        for at in (T0, T0 + 30 * 60_000, T0 + 90 * 60_000, T0 + 150 * 60_000)
    ]
    assert ids == [[], ["dca-0"], ["dca-1"], []]


def test_fills_add_up_to_what_was_spent_and_bought(tmp_path: Path) -> None:
    strategy = dca(tmp_path)

    def fill(asset_in: str, asset_out: str, amount_in: str, amount_out: str) -> StrategyFill:
        step = ExecStepFilled(
            plan_id="plan-1",
            step_id="s1",
            venue="sim",
            order_ref="r",
            asset_in=asset_in,
            asset_out=asset_out,
            amount_in=Decimal(amount_in),
            amount_out=Decimal(amount_out),
        )
        return StrategyFill("intent-1", "dca-1", step, T0)

    strategy.on_fill(fill("USDC", "WETH", "100", "0.05"))
    strategy.on_fill(fill("USDC", "WETH", "100", "0.0125"))
    strategy.on_fill(fill("WETH", "USDC", "1", "3000"))  # not a buy of its own: ignored
    assert (strategy.totals.spent, strategy.totals.bought, strategy.totals.fills) == (
        Decimal(200),
        Decimal("0.0625"),
        2,
    )
    assert strategy.totals.average_price == Decimal(3200)


@pytest.mark.parametrize(
    ("overrides", "path", "needle"),
    [
        ({"asset": "DOGE"}, "asset", "unknown asset 'DOGE'"),
        ({"quote": "WETH"}, "", "asset and quote are both 'WETH'"),
        ({"asset": "ARB"}, "", "ARB is on chain 42161 and USDC on chain 31337"),
        ({"amount": "0"}, "amount", "greater than 0"),
        ({"amount": "1.0000001"}, "amount", "more decimal places than USDC has (6)"),
        ({"interval_ms": 10}, "interval_ms", "greater than or equal to 1000"),
        ({"max_slippage": "1"}, "max_slippage", "less than 1"),
        ({"max_buys": 0}, "max_buys", "greater than or equal to 1"),
        ({"intervall_ms": 5}, "intervall_ms", "Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_their_yaml_path(
    overrides: dict[str, object], path: str, needle: str
) -> None:
    with pytest.raises(TopologyError) as caught:
        check_plugins(_topology_with({**CONFIG, **overrides}))
    problems = dict(caught.value.problems)
    where = f"plugins.strategies.dca.config.{path}".rstrip(".")
    assert where in problems, problems
    assert needle in problems[where]


def test_a_longer_interval_carried_over_goes_on_buying(tmp_path: Path) -> None:
    """Reconfigured (the runner restores the old instance's state into the new one): the
    last interval bought is counted again in the new interval's length."""
    old = dca(tmp_path)
    assert len(old.on_market(snapshot(T0 + 10))) == 1
    longer = dca(tmp_path, interval_ms=2 * HOUR)
    longer.restore_state(old.save_state())
    k2 = (T0 + 10) // (2 * HOUR)  # the two-hour interval of the last buy: not bought again
    assert longer.on_market(snapshot(T0 + 20)) == []
    next_start = (k2 + 1) * 2 * HOUR
    assert [s.client_intent_id for s in longer.on_market(snapshot(next_start))] == [
        client_intent_id("dca", k2 + 1)
    ]


def test_a_shorter_interval_carried_over_does_not_buy_twice_at_once(tmp_path: Path) -> None:
    old = dca(tmp_path, interval_ms=2 * HOUR)
    old.on_market(snapshot(T0 + HOUR + 10))
    shorter = dca(tmp_path)
    shorter.restore_state(old.save_state())
    assert shorter.on_market(snapshot(T0 + HOUR + 20)) == []  # the hour of the last buy
    assert len(shorter.on_market(snapshot(T0 + 2 * HOUR))) == 1


def test_a_state_saved_before_the_interval_was_kept_still_restores(tmp_path: Path) -> None:
    strategy = dca(tmp_path)
    strategy.restore_state({"last_index": T0 // HOUR, "spent": "1", "bought": "2", "fills": 1})
    assert strategy.on_market(snapshot(T0 + 5)) == []
    assert len(strategy.on_market(snapshot(T0 + HOUR))) == 1
