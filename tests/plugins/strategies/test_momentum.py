"""The momentum strategy: its features, its decisions, the packaged model, its state."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pipeline.models.events import ExecStepFilled
from pipeline.models.intent import IntentSubmission
from pipeline.models.market import PoolState
from pipeline.plugins import MarketSnapshot, StrategyContext, StrategyFill, check_plugins
from pipeline.plugins.manager import make_plugin_manager, strategy_specs
from pipeline.topology import Topology, load_topology
from pipeline.topology.loader import TopologyError
from plugins.strategies.momentum import Momentum, MomentumConfig, decide
from plugins.strategies.momentum.features import BARS_NEEDED, FEATURE_NAMES, features, rsi

TOPOLOGY = load_topology()
ASSETS = {a.symbol: a for a in TOPOLOGY.assets}
WETH, USDC = ASSETS["WETH"], ASSETS["USDC"]
BAR = 1_000
T0 = 1_800_000_000_000
CONFIG = MomentumConfig.model_validate(
    {"budget": "1000", "max_position": "1", "cooldown_bars": 2}, context={"assets": ASSETS}
)


# ------------------------------------------------------------------------ features


def test_features_need_a_full_window() -> None:
    assert features([3000.0] * (BARS_NEEDED - 1)) is None
    assert features([3000.0] * (BARS_NEEDED - 1) + [0.0]) is None
    assert len(features([3000.0] * BARS_NEEDED) or []) == len(FEATURE_NAMES) == 6


def test_a_flat_market_is_neutral_and_a_rising_one_is_not() -> None:
    assert features([3000.0] * BARS_NEEDED) == [0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    rising = [3000.0 * 1.001**i for i in range(BARS_NEEDED)]
    ret_1, ret_5, ret_15, ret_30, vol, strength = features(rising) or []
    assert ret_1 == pytest.approx(math.log(1.001))
    assert ret_30 == pytest.approx(30 * math.log(1.001))
    assert ret_1 < ret_5 < ret_15 < ret_30
    assert vol == pytest.approx(0.0, abs=1e-12)  # the same step every bar
    assert strength == 1.0


def test_rsi_weighs_gains_against_losses() -> None:
    assert rsi([0.01, -0.01]) == 0.5
    assert rsi([0.03, -0.01]) == pytest.approx(0.75)


# ------------------------------------------------------------------------ decisions


def test_no_trade_between_the_thresholds() -> None:
    for p in (0.43, 0.5, 0.57):
        assert decide(CONFIG, p, Decimal(0), Decimal(3000), USDC, WETH) is None


def test_a_buy_grows_with_the_signal_up_to_the_budget() -> None:
    weak = decide(CONFIG, 0.60, Decimal(0), Decimal(3000), USDC, WETH)
    strong = decide(CONFIG, 0.79, Decimal(0), Decimal(3000), USDC, WETH)
    full = decide(CONFIG, 1.0, Decimal(0), Decimal(3000), USDC, WETH)
    assert weak is not None
    assert strong is not None
    assert full is not None
    assert (weak.side, strong.side) == ("buy", "buy")
    # (0.60 - 0.58) / 0.42 of 1000 USDC, cut to USDC's 6 decimals
    assert weak.amount == Decimal("47.619047")
    assert weak.amount < strong.amount < full.amount == Decimal(1000)


def test_a_buy_stops_at_the_position_limit() -> None:
    capped = decide(CONFIG, 1.0, Decimal("0.9"), Decimal(3000), USDC, WETH)
    assert capped is not None
    assert capped.amount == Decimal(300)  # 0.1 WETH of room
    assert decide(CONFIG, 1.0, Decimal(1), Decimal(3000), USDC, WETH) is None


def test_a_sell_sells_at_most_what_it_holds_and_nothing_when_flat() -> None:
    assert decide(CONFIG, 0.1, Decimal(0), Decimal(3000), USDC, WETH) is None
    sell = decide(CONFIG, 0.0, Decimal("0.2"), Decimal(3000), USDC, WETH)
    assert sell is not None
    assert (sell.side, sell.amount) == ("sell", Decimal("0.2"))
    part = decide(CONFIG, 0.21, Decimal(1), Decimal(3000), USDC, WETH)
    # half strength: 500 USDC worth at 3000, cut to WETH's 18 decimals
    assert part is not None
    assert part.amount == Decimal("0.166666666666666666")


def test_dust_is_not_worth_an_intent() -> None:
    assert decide(CONFIG, 0.5801, Decimal(0), Decimal(3000), USDC, WETH) is None  # 0.24 USDC


def test_config_errors_name_their_yaml_path() -> None:
    data = TOPOLOGY.model_dump(by_alias=True)
    data["plugins"]["strategies"] = {
        "m": {"plugin": "momentum", "config": {"asset": "NOPE", "sell_below": "0.7"}}
    }
    with pytest.raises(TopologyError) as info:
        check_plugins(Topology.model_validate(data))
    paths = [p for p, _ in info.value.problems]
    assert "plugins.strategies.m.config.asset" in paths


# ------------------------------------------------------------------------ the strategy


class Scripted:
    """A model whose P(up) is given per call (the strategy's logic without the ONNX file)."""

    version = "test-1"

    def __init__(self, probabilities: Sequence[float]) -> None:
        self.probabilities = list(probabilities)
        self.rows: list[list[float]] = []

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        self.rows += [list(r) for r in rows]
        return [self.probabilities.pop(0) if self.probabilities else 0.5 for _ in rows]


def pool(price: float) -> PoolState:
    reserve0 = 1_000 * 10**18
    return PoolState(
        pool_id="sim-weth-usdc-5",
        venue="sim",
        chain_id=31337,
        token0="WETH",
        token1="USDC",
        reserve0=reserve0,
        reserve1=int(1_000 * price * 10**6),
        fee=500,
    )


def snap(bar: int, price: float) -> MarketSnapshot:
    return MarketSnapshot(at_ms=T0 + bar * BAR, pools={"sim": (pool(price),)}, books={})


def momentum(tmp_path: Path, model: Any, **overrides: Any) -> Momentum:
    config = MomentumConfig.model_validate(
        {"budget": "1000", "max_position": "1", "cooldown_bars": 2, **overrides},
        context={"assets": ASSETS},
    )
    context = StrategyContext(strategy_id="mom", assets=ASSETS, data_dir=tmp_path)
    return Momentum(config, context, model=model)


def feed(strategy: Momentum, bars: range, price: float = 3000.0) -> list[Any]:
    out: list[Any] = []
    for bar in bars:
        out += strategy.on_market(snap(bar, price * 1.001**bar))
    return out


def test_it_decides_once_per_closed_bar_after_the_window_fills(tmp_path: Path) -> None:
    model = Scripted([0.9])
    strategy = momentum(tmp_path, model)
    assert feed(strategy, range(BARS_NEEDED)) == []  # bars 0..30 seen, 0..29 closed
    assert model.rows == []
    (buy,) = feed(strategy, range(BARS_NEEDED, BARS_NEEDED + 1))  # bar 30 closes
    assert buy.client_intent_id == f"mom-{T0 // BAR + BARS_NEEDED - 1}"
    assert (buy.assets[0].asset.symbol, buy.assets[1].asset.symbol) == ("USDC", "WETH")
    assert buy.assets[0].amount == Decimal("761.904761")  # (0.9 - 0.58) / 0.42 of 1000
    assert buy.ml_features is not None
    assert buy.ml_features["signal"] == 0.9
    assert buy.ml_features["model:test-1"] == 1.0
    assert buy.ml_features["ret_1"] == pytest.approx(math.log(1.001), rel=1e-6)


def test_updates_inside_a_bar_only_move_its_close(tmp_path: Path) -> None:
    model = Scripted([])
    strategy = momentum(tmp_path, model)
    feed(strategy, range(BARS_NEEDED + 1))
    calls = len(model.rows)
    for price in (1.0, 5000.0, 3100.0):  # three updates in the same bar
        strategy.on_market(
            MarketSnapshot(
                at_ms=T0 + BARS_NEEDED * BAR + 10, pools={"sim": (pool(price),)}, books={}
            )
        )
    assert len(model.rows) == calls
    assert strategy.bar_close == pytest.approx(Decimal(3100), rel=Decimal("1e-9"))


def test_cooldown_then_a_sell_of_what_the_fills_bought(tmp_path: Path) -> None:
    strategy = momentum(tmp_path, Scripted([0.9, 0.9, 0.9, 0.0]))
    assert len(feed(strategy, range(BARS_NEEDED + 1))) == 1
    strategy.on_fill(fill("USDC", "WETH", "761.904761", "0.25"))
    assert feed(strategy, range(BARS_NEEDED + 1, BARS_NEEDED + 3)) == []  # cooling down
    (sell,) = feed(strategy, range(BARS_NEEDED + 3, BARS_NEEDED + 4))
    assert (sell.assets[0].asset.symbol, sell.assets[0].amount) == ("WETH", Decimal("0.25"))
    strategy.on_fill(fill("WETH", "USDC", "0.25", "760"))
    assert strategy.position == 0


def fill(asset_in: str, asset_out: str, amount_in: str, amount_out: str) -> StrategyFill:
    step = ExecStepFilled(
        plan_id="p",
        step_id="s",
        venue="sim",
        order_ref="r",
        asset_in=asset_in,
        asset_out=asset_out,
        amount_in=Decimal(amount_in),
        amount_out=Decimal(amount_out),
    )
    return StrategyFill("intent-1", "mom-1", step, T0)


def test_its_state_survives_a_restart_and_the_replay_submits_the_same(tmp_path: Path) -> None:
    first = momentum(tmp_path, Scripted([0.2] * 3 + [0.9]))
    feed(first, range(BARS_NEEDED + 3))
    first.on_fill(fill("USDC", "WETH", "10", "0.003"))
    saved = json.loads(json.dumps(first.save_state()))  # what the changelog holds
    again = momentum(tmp_path, Scripted([0.9]))
    again.restore_state(saved)
    assert (list(again.closes), again.bar, again.position) == (
        list(first.closes),
        first.bar,
        Decimal("0.003"),
    )
    assert feed(first, range(BARS_NEEDED + 3, BARS_NEEDED + 4)) == feed(
        again, range(BARS_NEEDED + 3, BARS_NEEDED + 4)
    )
    with pytest.raises(ValueError, match="not a momentum state"):
        again.restore_state({"closes": "x"})


def test_a_pool_it_cannot_price_is_ignored(tmp_path: Path) -> None:
    strategy = momentum(tmp_path, Scripted([]), venue="uniswap_v3")
    assert strategy.on_market(snap(0, 3000)) == []
    assert strategy.bar is None


# ------------------------------------------------------------------------ the packaged model


def test_momentum_is_a_builtin_strategy() -> None:
    assert strategy_specs(make_plugin_manager())["momentum"].config_model is MomentumConfig


def test_the_onnx_model_computes_what_the_trained_model_did() -> None:
    pytest.importorskip("onnxruntime", reason="the momentum model runs on onnxruntime")
    from plugins.strategies.momentum.model import SignalModel

    files = resources.files("plugins.strategies.momentum") / "model"
    samples = json.loads((files / "samples.json").read_text())
    metrics = json.loads((files / "metrics.json").read_text())
    model = SignalModel()
    assert model.version == metrics["version"]
    assert model.features == FEATURE_NAMES
    scores = model.score(samples["features"])
    assert scores == pytest.approx(samples["probability_up"], abs=1e-5)
    assert len({round(s, 3) for s in scores}) > 10  # not a constant


def test_the_model_reads_a_steady_rise_as_up() -> None:
    pytest.importorskip("onnxruntime", reason="the momentum model runs on onnxruntime")
    from plugins.strategies.momentum.model import SignalModel

    model = SignalModel()
    up = features([3000.0 * 1.002**i for i in range(BARS_NEEDED)])
    down = features([3000.0 * 0.998**i for i in range(BARS_NEEDED)])
    assert up is not None
    assert down is not None
    p_up, p_down = model.score([up, down])
    assert p_up > 0.6 > 0.4 > p_down


def test_a_longer_bar_carried_over_starts_its_history_afresh_and_goes_on(
    tmp_path: Path,
) -> None:
    """Reconfigured (the runner restores the old instance's state into the new one): bars of
    another length are not the model's history, and the old bar index must not silence it."""
    old = momentum(tmp_path, Scripted([0.9]))
    feed(old, range(BARS_NEEDED + 1))
    old.on_fill(fill("USDC", "WETH", "10", "0.003"))
    longer = momentum(tmp_path, Scripted([0.9]), bar_ms=2 * BAR)
    longer.restore_state(json.loads(json.dumps(old.save_state())))
    assert (list(longer.closes), longer.bar, longer.position) == ([], None, Decimal("0.003"))
    start = T0 + (BARS_NEEDED + 1) * BAR
    out: list[IntentSubmission] = []
    for bar in range(BARS_NEEDED + 1):
        at = start + bar * 2 * BAR
        out += longer.on_market(
            MarketSnapshot(at_ms=at, pools={"sim": (pool(3000 * 1.001**bar),)}, books={})
        )
    assert len(out) == 1  # decides again once 31 bars of the new length have closed


def test_another_asset_carried_over_does_not_inherit_the_position(tmp_path: Path) -> None:
    old = momentum(tmp_path, Scripted([]))
    feed(old, range(3))
    old.on_fill(fill("USDC", "WETH", "10", "0.003"))
    other = momentum(tmp_path, Scripted([]), asset="WBTC")
    other.restore_state(json.loads(json.dumps(old.save_state())))
    assert (other.position, list(other.closes)) == (Decimal(0), [])
