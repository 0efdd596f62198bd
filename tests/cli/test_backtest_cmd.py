"""``sep data generate`` then ``sep backtest`` twice: the same event log byte for byte, the
metrics and a self-contained report written, a readable summary printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main

DCA = '{"asset": "WETH", "quote": "USDC", "amount": "500", "interval_ms": 1800000}'


def test_generate_then_backtest_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pump.jsonl.gz"
    assert main(["data", "generate", "--model", "pump_dump", "--seed", "3", "--steps", "720",
                 "--pool", "sim-weth-usdc-5", "--out", str(data)]) == 0  # fmt: skip
    assert "wrote 720 pool states" in capsys.readouterr().out
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        code = main(["backtest", str(data), "--strategy", "dca", "--config", DCA,
                     "--capital", "20000", "--out", str(out), "--no-progress"])  # fmt: skip
        assert code == 0
        outs.append(out)
    printed = capsys.readouterr().out
    assert "max drawdown" in printed
    assert "Sharpe" in printed
    first, second = ((o / "events.jsonl").read_bytes() for o in outs)
    assert first == second
    assert first.count(b"\n") > 24 * 8
    metrics = json.loads((outs[0] / "metrics.json").read_text())
    assert metrics["metrics"]["intents"] == 24  # 12 hours, a buy every 30 minutes
    assert metrics["metrics"]["completed"] == 24
    assert metrics["metrics"]["start_equity"] == "20000"
    assert metrics == json.loads((outs[1] / "metrics.json").read_text()) | {
        "run": metrics["run"]  # the run's wall time differs
    }
    report = (outs[0] / "report.html").read_text()
    assert report.count("<svg") == 4  # equity, drawdown, exposure, WETH with fills
    assert "http://" not in report
    assert "https://" not in report
    assert "<script" not in report


def test_backtest_errors_are_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(tmp_path / "none.jsonl")]) == 2
    assert "no data file" in capsys.readouterr().err
    data = tmp_path / "d.jsonl"
    main(["data", "generate", "--steps", "5", "--pool", "sim-weth-usdc-5", "--out", str(data)])
    assert main(["backtest", str(data), "--strategy", "nope", "--no-progress",
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "nope" in capsys.readouterr().err
