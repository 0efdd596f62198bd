"""``sep backtest --store``: the event log appended to PostgreSQL, once (a rerun of the same
backtest stores nothing new: the same event ids); then ``sep replay --counterfactual`` reads
those intents back from the event store (others there are left out: outside the data)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import orjson
import pytest

from pipeline.cli.main import main
from pipeline.store.eventstore import EventStore

DCA = '{"asset": "WETH", "quote": "USDC", "amount": "100", "interval_ms": 3600000}'


async def _migrate(dsn: str) -> None:
    store = await EventStore.connect(dsn)
    await store.close()


async def _stored(dsn: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT COUNT(*) FROM events WHERE event_id = ANY($1)", ids
        )
        return count
    finally:
        await conn.close()


def test_store_appends_the_log_once(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    asyncio.run(_migrate(postgres_dsn))  # the CLI runs its own event loops
    monkeypatch.setenv("SEP_POSTGRES", postgres_dsn)
    data = tmp_path / "walk.jsonl"
    main(["data", "generate", "--seed", "8", "--steps", "180", "--pool", "sim-weth-usdc-5",
          "--out", str(data)])  # fmt: skip
    args = ["backtest", str(data), "--strategy", "dca", "--config", DCA, "--store",
            "--no-progress", "--out", str(tmp_path / "out")]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    first = capsys.readouterr().out
    log = (tmp_path / "out" / "events.jsonl").read_bytes().splitlines()
    assert f"stored {len(log)} new events" in first
    assert main(args) == 0
    assert f"stored 0 new events in PostgreSQL ({len(log)} in the log)" in capsys.readouterr().out
    ids = [orjson.loads(line)["eventId"] for line in log]
    assert (
        asyncio.run(_stored(postgres_dsn, ids)) == len(log) == 3 * 9
    )  # three buys, nine events each
    # The event store holds other tests' intents too: only this data's span is replayed.
    capsys.readouterr()
    code = main(["replay", "--counterfactual", "--data", str(data), "--strategy-id", "dca",
                 "--set", "risk.max_notional=50", "--out", str(tmp_path / "cf")])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "before: 3 of 3 completed" in printed
    assert "after: 0 of 3 completed" in printed  # 100 USDC buys, over a 50 USDC limit
