"""``sep walkforward`` over generated data: a table per fold, walkforward.json with every
candidate's train score and the chosen one's test figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main

BASE = '{"asset": "WETH", "quote": "USDC", "interval_ms": 3600000}'


def test_walkforward_prints_and_writes_each_fold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "walk.jsonl"
    assert main(["data", "generate", "--seed", "2", "--steps", "180", "--step", "10m",
                 "--drift", "0.002", "--vol", "0", "--pool", "sim-weth-usdc-5",
                 "--out", str(data)]) == 0  # fmt: skip
    out = tmp_path / "wf"
    code = main(["walkforward", str(data), "--strategy", "dca", "--config", BASE,
                 "--grid", "amount=10,1000", "--train", "12h", "--test", "6h",
                 "--objective", "return", "--workers", "1", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "out of sample: return" in printed
    result = json.loads((out / "walkforward.json").read_text())
    assert len(result["folds"]) == 2  # 30 h of data: 12 + 6, then 6 more
    # A steady uptrend: the larger amount gains more in every train window.
    assert [f["params"] for f in result["folds"]] == [{"amount": 1000}] * 2
    assert all(len(f["scores"]) == 2 for f in result["folds"])


def test_walkforward_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "short.jsonl"
    main(["data", "generate", "--steps", "10", "--pool", "sim-weth-usdc-5", "--out", str(data)])
    capsys.readouterr()
    args = ["walkforward", str(data), "--train", "1h", "--test", "1h"]
    assert main(args) == 2
    assert "--strategy" in capsys.readouterr().err
    assert main([*args, "--strategy", "dca", "--config", BASE, "--grid", "amount=1,2"]) == 2
    assert "too short" in capsys.readouterr().err
