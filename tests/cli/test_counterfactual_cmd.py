"""``sep replay --counterfactual`` over a backtest's event log: the table, the totals and
comparison.json, intent by intent."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.cli.main import main

DCA = '{"asset": "WETH", "quote": "USDC", "amount": "20000", "interval_ms": 3600000}'


def test_counterfactual_over_a_backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "walk.jsonl"
    assert main(["data", "generate", "--seed", "4", "--steps", "240",
                 "--pool", "sim-weth-usdc-5", "--out", str(data)]) == 0  # fmt: skip
    run = tmp_path / "run"
    assert main(["backtest", str(data), "--strategy", "dca", "--config", DCA,
                 "--out", str(run), "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "cf"
    events = str(run / "events.jsonl")
    code = main(["replay", "--counterfactual", "--events", events, "--data", str(data),
                 "--set", "risk.max_notional=10000", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "before: 4 of 4 completed" in printed
    assert "after: 0 of 4 completed" in printed
    result = json.loads((out / "comparison.json").read_text())
    assert [i["after"]["state"] for i in result["intents"]] == ["risk_rejected"] * 4
    # What happened cost something: fee and impact, in basis points of the arrival value.
    assert all(Decimal(i["before"]["bps"]) > 0 for i in result["intents"])


def test_counterfactual_needs_the_market_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--counterfactual", "--events", "x.jsonl"]) == 2
    assert "--data" in capsys.readouterr().err
