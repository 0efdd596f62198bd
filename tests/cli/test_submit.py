"""``sep submit``: what it refuses before sending anything; a duplicate gets the existing id."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.cli.main import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--dispose", "1", "WETH", "--for", "USDC", "--venue", "nope"],
            "unknown venue 'nope'; the topology's venues: uniswap_v3, sim",
        ),
        (["--dispose", "1", "WTH", "--for", "USDC"], "unknown asset 'WTH'; known: WETH, USDC"),
        (["--dispose", "1", "WETH"], "give --dispose AMOUNT ASSET or --acquire AMOUNT ASSET"),
    ],
)
def test_refused_with_a_reason(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Kafka points nowhere: a refusal must come before any connection attempt.
    monkeypatch.setenv("SEP_KAFKA", "127.0.0.1:1")
    assert main(["submit", *argv]) == 2
    assert message in capsys.readouterr().err


async def test_the_same_submission_twice_prints_one_intent_id(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """`sep submit` claims the dedupe key before producing, like POST /intents."""
    from pipeline.cli.submit import _send
    from pipeline.config import Settings
    from pipeline.runtime.topics import ensure_topics
    from pipeline.samples import submission
    from pipeline.topology import load_topology

    # The topics first: producing to a missing one would create it with the broker's
    # default partition count, and every later test's ensure_topics would refuse it.
    await ensure_topics(kafka_bootstrap, load_topology())
    settings = Settings(
        kafka=kafka_bootstrap,
        redis=redis_url,
        data_dir=tmp_path,
        redis_prefix=f"t-{uuid.uuid4().hex[:6]}:",
    )
    body = submission(
        load_topology(),
        "DISPOSE",
        "WETH",
        "USDC",
        Decimal("1"),
        strategy_id="cli-dup",
        client_intent_id=uuid.uuid4().hex,
    )
    first = await _send(settings, body, load_topology())
    second = await _send(settings, body, load_topology())
    assert first["status"] == "submitted"
    assert second == {"intentId": first["intentId"], "status": "duplicate"}
