"""``sep submit``: what it refuses before sending anything."""

from __future__ import annotations

import pytest

from pipeline.cli.main import main


@pytest.mark.parametrize(("argv", "message"), [
    (["--dispose", "1", "WETH", "--for", "USDC", "--venue", "nope"],
     "unknown venue 'nope'; the topology's venues: uniswap_v3, sim"),
    (["--dispose", "1", "WTH", "--for", "USDC"], "unknown asset 'WTH'; known: WETH, USDC"),
    (["--dispose", "1", "WETH"], "give --dispose AMOUNT ASSET or --acquire AMOUNT ASSET"),
])
def test_refused_with_a_reason(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    # Kafka points nowhere: a refusal must come before any connection attempt.
    monkeypatch.setenv("SEP_KAFKA", "127.0.0.1:1")
    assert main(["submit", *argv]) == 2
    assert message in capsys.readouterr().err
