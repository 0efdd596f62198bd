"""300 intents through the six stages on the real broker, PostgreSQL and Redis.

Produced directly with aiokafka (any producer must work, not just ours): valid intents, risk
breakers, duplicates and malformed input.  Every outcome is checked in the stores.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.config import Settings
from pipeline.control.keys import TOPIC as CONTROL_TOPIC
from pipeline.harness import WorkerPool, group_offsets, wait_until_finished
from pipeline.intent_ids import predicted_intent_id, record_intent_id
from pipeline.models.intent import IntentSubmission
from pipeline.samples import random_submission, submission
from pipeline.store.readmodel import ReadModel
from pipeline.topology import load_topology
from tests.e2e.checks import (
    COMPLETED_PATH,
    assert_contiguous,
    assert_read_model_agrees,
    settled_events,
    sim_fill_counts,
)

INPUT = "sep.intents.submitted"


def _malformed(topology: Any, run: str, i: int) -> bytes:
    kind = i % 4
    if kind == 0:
        return b'{"strategyId": "bad", "type": "DISPOSE", "assets": [' + str(i).encode()
    if kind == 1:
        body = submission(
            topology,
            "DISPOSE",
            "WETH",
            "USDC",
            "1",
            strategy_id=f"bad-{run}",
            client_intent_id=f"{run}-missing-{i}",
        )
        del body["constraints"]
        return orjson.dumps(body)
    if kind == 2:
        return orjson.dumps(
            submission(
                topology,
                "DISPOSE",
                "WETH",
                "USDC",
                "-3",
                strategy_id=f"bad-{run}",
                client_intent_id=f"{run}-negative-{i}",
            )
        )
    body = submission(
        topology,
        "DISPOSE",
        "WETH",
        "USDC",
        "1",
        strategy_id=f"bad-{run}",
        client_intent_id=f"{run}-unknown-{i}",
    )
    body["assets"][1]["asset"] = {
        "symbol": "NOPE",
        "decimals": 18,
        "chainId": topology.asset("WETH").chain_id,  # only the symbol is wrong
        "address": "0x" + "ab" * 20,
    }
    return orjson.dumps(body)


async def test_300_intents_reach_the_right_end(
    workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    topology = load_topology()
    rng = random.Random(2)
    run = uuid.uuid4().hex[:8]
    valid: list[dict[str, Any]] = [
        random_submission(
            topology,
            rng,
            strategy_id=f"e2e-{run}-{i % 5}",
            client_intent_id=f"{run}-ok-{i}",
            venues=["sim"],  # the sim ledger counts the fills below
        )
        for i in range(200)
    ]
    breakers = [
        submission(
            topology,
            "DISPOSE",
            "WETH",
            "USDC",
            "1000",  # 3M USDC notional
            strategy_id=f"e2e-{run}-risk",
            client_intent_id=f"{run}-big-{i}",
        )
        for i in range(15)
    ]
    breakers += [
        submission(
            topology,
            "DISPOSE",
            "WETH",
            "USDC",
            "0.1",
            max_slippage="0.2",
            strategy_id=f"e2e-{run}-risk",
            client_intent_id=f"{run}-slip-{i}",
        )
        for i in range(15)
    ]
    duplicates = valid[:30]
    malformed = [_malformed(topology, run, i) for i in range(40)]

    records: list[tuple[str, bytes, bytes]] = []  # (kind, key, value)
    records += [("valid", b["strategyId"].encode(), orjson.dumps(b)) for b in valid]
    records += [("risk", b["strategyId"].encode(), orjson.dumps(b)) for b in breakers]
    records += [("duplicate", b["strategyId"].encode(), orjson.dumps(b)) for b in duplicates]
    records += [("malformed", f"bad-{run}".encode(), v) for v in malformed]
    assert len(records) == 315 - 15  # 200 + 30 + 30 + 40
    head, tail = records[:200], records[200:]
    rng.shuffle(tail)  # duplicates come after their originals, in between everything else
    records = head + tail

    producer = AIOKafkaProducer(bootstrap_servers=prepared.kafka, acks="all")
    await producer.start()
    sent: list[tuple[str, bytes, Any]] = []
    try:
        for kind, key, value in records:
            meta = await (await producer.send(INPUT, value, key=key))
            sent.append((kind, value, meta))
    finally:
        await producer.stop()

    def intent_id(kind: str, value: bytes, meta: Any) -> str:
        # Ingest derives the id from the client id when the record parses as a submission
        # (negative amounts and unknown assets do; validate rejects them later), else from
        # the record's position.
        try:
            body = IntentSubmission.model_validate_json(value).model_dump(by_alias=True)
        except ValueError:
            body = None
        if body and body.get("clientIntentId"):
            return predicted_intent_id(
                meta.timestamp, body["strategyId"], body["clientIntentId"], partition=meta.partition
            )
        return record_intent_id(meta.timestamp, meta.topic, meta.partition, meta.offset)

    ids = {
        kind: [intent_id(k, v, m) for k, v, m in sent if k == kind]
        for kind in ("valid", "risk", "duplicate", "malformed")
    }
    expected_ids = ids["valid"] + ids["risk"] + ids["malformed"]
    outcome = await wait_until_finished(prepared.postgres, expected_ids, timeout=180, pool=workers)
    by_intent = await settled_events(db, expected_ids)

    # Every valid intent completed, along the full path, seq 1..9 with no gaps or repeats.
    for intent in ids["valid"]:
        # The last events say why (a failed step's reason), pytest would cut a longer message.
        assert outcome[intent] == "exec.completed", (
            intent,
            [(e["topic"], orjson.loads(e["payload"])) for e in by_intent[intent]][-3:],
        )
        assert [e["topic"] for e in by_intent[intent]] == COMPLETED_PATH
        assert_contiguous(intent, by_intent[intent])

    # Each risk breaker is risk_rejected, naming its rule.
    expected_rule = {
        intent_id(k, v, m): ("max_slippage" if b'"maxSlippage":"0.2"' in v else "max_notional")
        for k, v, m in sent
        if k == "risk"
    }
    rules = {i: orjson.loads(by_intent[i][-1]["payload"])["rule"] for i in ids["risk"]}
    assert rules == expected_rule
    assert sorted(rules.values()) == ["max_notional"] * 15 + ["max_slippage"] * 15
    for intent in ids["risk"]:
        assert [e["topic"] for e in by_intent[intent]] == ["intent.submitted", "risk.rejected"]

    # Duplicates were stored once: no intent of their own, and no second fill for the original.
    duplicate_rows = await db.fetchval(
        "SELECT count(*) FROM events WHERE correlation_id = ANY($1::text[])", ids["duplicate"]
    )
    assert duplicate_rows == 0
    originals = [i for i in ids["valid"][:30]]
    assert all(outcome[i] == "exec.completed" for i in originals)

    # Each malformed input: a rejection with field paths, and its bytes in the dead letters.
    rejections = {i: orjson.loads(by_intent[i][-1]["payload"]) for i in ids["malformed"]}
    for intent, payload in rejections.items():
        assert by_intent[intent][-1]["topic"] == "intent.rejected"
        assert payload["errors"], payload
        assert payload["deadLetterKey"]
    expected_path = {
        b'"amount":"-3"': "assets.0.amount",
        b'"symbol":"NOPE"': "assets.1.asset.symbol",
    }
    for kind, value, meta in sent:
        if kind != "malformed":
            continue
        rejection = rejections[intent_id(kind, value, meta)]
        errors = rejection["errors"]
        if not value.endswith(b"}"):  # the truncated ones
            assert rejection["reason"] == "not valid JSON"
            assert [e["path"] for e in errors] == [""]
            continue
        marker = next((m for m in expected_path if m in value), None)
        if marker is not None:
            assert [e["path"] for e in errors] == [expected_path[marker]], errors
        elif b'"constraints"' not in value and value.endswith(b"}"):
            assert [e["path"] for e in errors] == ["constraints"], errors
    dead = await _dead_letters(prepared.kafka, {p["deadLetterKey"] for p in rejections.values()})
    assert set(dead) == {p["deadLetterKey"] for p in rejections.values()}
    raw_by_intent = {intent_id(k, v, m): v for k, v, m in sent if k == "malformed"}
    for intent, payload in rejections.items():
        if by_intent[intent][0]["topic"] == "intent.rejected":  # rejected by ingest: raw bytes
            assert dead[payload["deadLetterKey"]] == raw_by_intent[intent]

    # Exactly one fill per executed step in the venue's own ledger.
    fills = sim_fill_counts(prepared.data_dir)
    steps = [
        orjson.loads(e["payload"])["stepId"]
        for i in ids["valid"]
        for e in by_intent[i]
        if e["topic"] == "exec.step_filled"
    ]
    assert len(steps) == 200
    assert [fills.get(s) for s in steps] == [1] * 200

    # The Redis read model agrees with the event store for every intent.
    read_model = ReadModel.connect(prepared.redis, prepared.redis_prefix)
    try:
        await assert_read_model_agrees(read_model, by_intent)
    finally:
        await read_model.close()


async def _dead_letters(bootstrap: str, keys: set[str]) -> dict[str, bytes]:
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: dict[str, bytes] = {}
    try:
        partitions = load_topology().topic("sep.deadletter").partitions
        tps = [TopicPartition("sep.deadletter", p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)

        async def behind() -> bool:
            return any([await consumer.position(tp) < offset for tp, offset in end.items()])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    key = (message.key or b"").decode()
                    if key in keys:
                        found[key] = message.value
    finally:
        await consumer.stop()
    return found


async def test_committed_offsets_reach_the_end_once_the_pipeline_is_idle(
    workers: WorkerPool, prepared: Settings
) -> None:
    """Offsets are committed, and only up to what was processed (see runtime.offsets).

    Processing alone cannot show that commits happen: a pipeline that never committed would
    replay everything after a restart and, being idempotent, still get every answer right.
    """
    topology = load_topology()
    rng = random.Random(7)
    run = uuid.uuid4().hex[:8]
    bodies = [
        random_submission(
            topology,
            rng,
            strategy_id=f"commit-{run}",
            client_intent_id=f"{run}-{i}",
            venues=["sim"],
        )
        for i in range(20)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=prepared.kafka, acks="all")
    await producer.start()
    try:
        sent = [
            await (await producer.send(INPUT, orjson.dumps(b), key=b["strategyId"].encode()))
            for b in bodies
        ]
    finally:
        await producer.stop()
    ids = [
        predicted_intent_id(
            m.timestamp, b["strategyId"], b["clientIntentId"], partition=m.partition
        )
        for b, m in zip(bodies, sent, strict=True)
    ]
    await wait_until_finished(prepared.postgres, ids, timeout=120, pool=workers)

    # The control topic is an input too, but nothing was published on it in this run.  The
    # singleton stages (the strategy runner) are not run here, and commit in groups of their own.
    inputs = {
        topic for stage in topology.stages if not stage.singleton for topic in stage.inputs
    } - {CONTROL_TOPIC}
    behind: dict[str, tuple[int, int]] = {}
    for _ in range(60):  # commits happen every few seconds (broker_commit_interval)
        offsets = (await group_offsets(prepared.kafka))[topology.app.id]
        behind = {
            tp: (committed, end)
            for tp, (committed, end) in offsets.items()
            if tp.split("/")[0] in inputs and end > 0 and committed != end
        }
        if not behind and offsets:
            break
        await asyncio.sleep(0.5)
    assert offsets, "the pipeline's group has committed nothing"
    assert not behind, f"partitions not committed to their end: {behind}"
    assert {tp.split("/")[0] for tp in offsets} >= inputs
