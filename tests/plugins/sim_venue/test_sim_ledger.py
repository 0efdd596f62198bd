"""The ledger: seeding, persistence, big integers, and several processes on one file."""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.models import Asset, ExecutionStep
from plugins.sim_venue import Ledger, LedgerError, SimVenueConfig
from plugins.sim_venue.amm import Pool, Swap, SwapError
from plugins.sim_venue.ledger import NewSubmission, SubmissionRecord

E18 = 10**18
SEED = (Pool("p", "WETH", "USDC", 1_000 * E18, 3_000_000 * 10**6, 3000),)
WORKER = Path(__file__).with_name("ledger_worker.py")


def _fixed_trade(record: SubmissionRecord, pools: Mapping[str, Pool]) -> Swap:
    """An executor that buys 1000 USDC for 1 WETH, whatever the price (the ledger's view)."""
    if record.step_id == "bad":
        raise SwapError("slippage", "told to fail")
    return Swap(E18, 1000 * 10**6, {"p": pools["p"].after("WETH", E18, 1000 * 10**6)})


def test_pools_are_seeded_once_and_traded_reserves_persist(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "ledger.sqlite"  # the directory is created
    ledger = Ledger.open(path, SEED)
    assert ledger.pools() == {"p": SEED[0]}
    ledger.add_submission("o1", "s1", "{}", submitted_ms=0, due_ms=0)
    record = ledger.settle("o1", 1, _fixed_trade)
    assert record is not None
    assert (record.status, record.amount_in, record.amount_out) == ("filled", E18, 10**9)
    ledger.close()

    reopened = Ledger.open(path, SEED)  # seeding again must not reset the traded reserves
    # ...and the pool's seq is the fill that moved it last.
    assert record.fill_seq == 1
    assert reopened.pools()["p"] == replace(SEED[0].after("WETH", E18, 10**9), seq=1)
    assert reopened.fill_counts() == {"s1": 1}
    reopened.close()


def test_settle_is_one_transaction_and_records_failures(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite", SEED)
    ledger.add_submission("o1", "bad", "{}", submitted_ms=0, due_ms=0)
    ledger.add_submission("o2", "later", "{}", submitted_ms=0, due_ms=50)
    failed = ledger.settle("o1", 10, _fixed_trade)
    assert failed is not None
    assert (failed.status, failed.reason, failed.detail) == ("failed", "slippage", "told to fail")
    assert ledger.pools() == {"p": SEED[0]}
    not_due = ledger.submission("o2")
    assert not_due is not None
    assert not_due.status == "pending"
    assert ledger.settle("o1", 100, _fixed_trade) == failed  # final: not executed again
    assert ledger.settle("o2", 100, _fixed_trade) is not None
    assert ledger.total_fills() == 1
    ledger.close()


def _priced_trade(record: SubmissionRecord, pools: Mapping[str, Pool]) -> Swap:
    """An executor whose fill depends on the pool as the submissions before left it (so
    the order they run in shows), failing the steps named ``bad...``."""
    if record.step_id.startswith("bad"):
        raise SwapError("slippage", f"told to fail ({record.number})")
    pool = pools["p"]
    paid = E18 // (1 + (record.number or 0) % 7)
    got = pool.reserve1 * paid // (pool.reserve0 + paid)
    return Swap(paid, got, {"p": pool.after("WETH", paid, got)})


def _dump(ledger: Ledger) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(ledger.path)
    try:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("pools", "submissions", "fills")
        }
    finally:
        db.close()


@pytest.mark.parametrize("seed", range(20))
def test_add_and_settle_leaves_what_storing_then_settling_leaves(tmp_path: Path, seed: int) -> None:
    """``add_and_settle`` runs the new submissions before storing them (one insert a row):
    the file, and the records it returns, are those of ``add_submissions`` then
    ``settle_many`` in one go -- with submissions stored earlier and due now (another
    process's) among them, failures, and submissions not due yet."""
    rng = random.Random(seed)
    twice = Ledger.open(tmp_path / "twice.sqlite", SEED)
    once = Ledger.open(tmp_path / "once.sqlite", SEED)
    now = 1000.0
    for batch in range(12):
        news = []
        for i in range(rng.randrange(0, 6)):
            step = f"{'bad' if rng.random() < 0.2 else 's'}-{batch}-{i}"
            submitted = now - rng.choice((0.0, 0.5, 3.0))
            due = submitted + rng.choice((0.0, 0.0, 1.0, 7.5))
            news.append(NewSubmission(f"o-{batch}-{i}", step, "{}", submitted, due))
        if rng.random() < 0.3:  # stored earlier (another process), due later on
            other = NewSubmission(f"x-{batch}", f"x-{batch}", "{}", now, now + rng.random() * 5)
            for ledger in (twice, once):
                ledger.add_submissions([other])
        twice.add_submissions(news)
        expected = twice.settle_many([n.order_ref for n in news], now, _priced_trade)
        got = once.add_and_settle(news, now, _priced_trade)
        for new in news:
            if new.order_ref in got:
                assert got[new.order_ref] == expected[new.order_ref]
            else:
                assert expected[new.order_ref].status == "pending"
        assert _dump(once) == _dump(twice)
        now += rng.choice((0.0, 1.0, 4.0))
    twice.close()
    once.close()


def test_each_pool_carries_the_number_of_the_last_fill_that_moved_it(tmp_path: Path) -> None:
    """A state includes fill n exactly when the pools n moved have ``seq >= n``: fills are
    numbered in commit order, a failed one moves nothing, and other pools keep their seq."""
    ledger = Ledger.open(tmp_path / "ledger.sqlite", (*SEED, Pool("q", "DAI", "USDC", 5, 5, 1)))
    for ref, step in (("o1", "s1"), ("o2", "bad"), ("o3", "s3")):
        ledger.add_submission(ref, step, "{}", submitted_ms=0, due_ms=0)
    ledger.settle("o1", 1, _fixed_trade)  # settles all three, in order
    records = [ledger.submission(ref) for ref in ("o1", "o2", "o3")]
    assert [r.fill_seq if r is not None else "missing" for r in records] == [1, None, 2]
    pools = ledger.pools()
    assert (pools["p"].seq, pools["q"].seq) == (2, 0)
    ledger.close()


def test_a_version_1_ledger_is_upgraded_keeping_its_reserves(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE pools (pool_id TEXT PRIMARY KEY, token0 TEXT NOT NULL,
            token1 TEXT NOT NULL, reserve0 TEXT NOT NULL, reserve1 TEXT NOT NULL,
            fee INTEGER NOT NULL);
        INSERT INTO pools VALUES ('p', 'WETH', 'USDC', '7', '9', 3000);
    """)
    db.close()
    readonly = Ledger.open_readonly(path)  # sep status reads it as it is
    assert readonly.pools() == {"p": Pool("p", "WETH", "USDC", 7, 9, 3000, seq=0)}
    readonly.close()
    ledger = Ledger.open(path, SEED)
    assert ledger.pools() == {"p": Pool("p", "WETH", "USDC", 7, 9, 3000, seq=0)}
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchone() == ("2",)


def test_amounts_beyond_64_bits_round_trip_exactly(tmp_path: Path) -> None:
    huge = Pool("h", "WETH", "DAI", 2**100 + 1, 3**70, 0)
    ledger = Ledger.open(tmp_path / "ledger.sqlite", (huge,))
    assert ledger.pools()["h"] == huge
    ledger.close()


def test_changed_pool_definitions_are_refused_and_new_pools_seeded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger.open(path, SEED).close()
    ledger = Ledger.open(path, (*SEED, Pool("q", "DAI", "USDC", 5, 5, 100)))
    assert set(ledger.pools()) == {"p", "q"}
    ledger.close()
    with pytest.raises(LedgerError, match="pool 'p' is WETH/USDC fee 3000 in the ledger"):
        Ledger.open(path, (Pool("p", "WETH", "USDC", 1, 1, 500),))


def test_a_readonly_ledger_reads_and_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with pytest.raises(LedgerError, match="no sim venue ledger"):
        Ledger.open_readonly(path)
    assert not path.exists()
    writer = Ledger.open(path, SEED)
    writer.add_submission("o1", "s1", "{}", submitted_ms=0, due_ms=0)
    writer.settle("o1", 1, _fixed_trade)
    reader = Ledger.open_readonly(path)
    try:
        assert (reader.fill_counts(), reader.total_fills()) == ({"s1": 1}, 1)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.add_submission("o2", "s2", "{}", submitted_ms=0, due_ms=0)
    finally:
        reader.close()
        writer.close()


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger.open(path, SEED).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def reference_out(reserve_in: int, reserve_out: int, amount: int, fee: int) -> int:
    g = 1_000_000 - fee
    return amount * g * reserve_out // (reserve_in * 1_000_000 + amount * g)


@pytest.mark.slow
def test_processes_trading_one_pool_see_one_consistent_sequence(
    tmp_path: Path, assets: dict[str, Asset]
) -> None:
    """Four processes fill swaps on one pool at once.

    Replaying the fills in commit order from the seeded reserves must reproduce every fill's
    output and the final reserves: the processes' transactions were serialised, none read a
    stale pool.
    """
    workers, fills = 4, 150
    config = SimVenueConfig.model_validate(
        {
            "pools": [
                {
                    "pool_id": "p",
                    "token0": "WETH",
                    "token1": "USDC",
                    "reserve0": "1000",
                    "reserve1": "3000000",
                    "fee": 3000,
                }
            ]
        },
        context={"assets": assets},
    )
    data_dir, go = tmp_path / "sim", tmp_path / "go"
    assets_json = json.dumps([a.model_dump(mode="json") for a in assets.values()])
    root = Path(__file__).resolve().parents[3]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(data_dir),
                config.model_dump_json(),
                assets_json,
                str(worker),
                str(fills),
                str(go),
            ],
            env=env,
        )
        for worker in range(workers)
    ]
    try:
        _wait_for(lambda: all((tmp_path / f"ready-{w}").exists() for w in range(workers)), procs)
        go.touch()
        assert [proc.wait(timeout=120) for proc in procs] == [0] * workers
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    ledger = Ledger.open_readonly(data_dir / "ledger.sqlite")
    try:
        history = ledger.fills()
        assert len(history) == workers * fills
        assert set(ledger.fill_counts().values()) == {1}
        reserve = {"WETH": 1_000 * E18, "USDC": 3_000_000 * 10**6}
        k = reserve["WETH"] * reserve["USDC"]
        for fill in history:
            record = ledger.submission(fill.order_ref)
            assert record is not None
            step = ExecutionStep.model_validate_json(record.step_json)
            token_in, token_out = step.asset_in, step.asset_out
            expected = reference_out(reserve[token_in], reserve[token_out], fill.amount_in, 3000)
            assert fill.amount_out == expected, f"fill {fill.seq} saw a stale pool"
            reserve[token_in] += fill.amount_in
            reserve[token_out] -= fill.amount_out
            assert reserve["WETH"] * reserve["USDC"] >= k
            k = reserve["WETH"] * reserve["USDC"]
        final = ledger.pools()["p"]
        assert (final.reserve0, final.reserve1) == (reserve["WETH"], reserve["USDC"])
        # The processes really did interleave (else this test proves nothing).
        writers = [fill.step_id.split("-")[0] for fill in history]
        assert sum(a != b for a, b in itertools.pairwise(writers)) >= workers
    finally:
        ledger.close()


def _wait_for(condition: Callable[[], bool], procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if any(proc.poll() is not None for proc in procs):
            raise AssertionError("a worker exited before it was ready")
        if time.monotonic() > deadline:
            raise AssertionError("workers not ready within 60 s")
        time.sleep(0.01)
