"""Compressed input: every codec Kafka has, from any producer, is consumed (issue 10, point 1).

Many producers compress by default (librdkafka-based ones with ``compression.codec``, Java's
``compression.type``).  One snappy batch once crashed both workers' fetchers in a loop
(``UnsupportedCodecError``: aiokafka decodes snappy, lz4 and zstd with ``cramjam``, which was
not installed).  So:

* without a broker: each codec round-trips through aiokafka's codec functions and through a
  record batch, the fetcher's own decode path (a missing library fails here, in milliseconds);
* against the real broker and workers: a valid intent produced by aiokafka configured for each
  codec completes, and so does one produced by Debian's ``kcat`` (librdkafka) with ``-z``.

These tests depend only on the harness (``WorkerPool``, ``wait_until_finished``) and the topic
contract (``sep.intents.submitted``, events in the store), not on how the workers consume.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer, codec
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from pipeline.client import INPUT_TOPIC, predicted_intent_id
from pipeline.config import Settings
from pipeline.harness import WorkerPool, wait_until_finished
from pipeline.intent_ids import submission_key
from pipeline.samples import random_submission
from pipeline.topology import load_topology

CODECS = ("gzip", "snappy", "lz4", "zstd")
# name -> (is the library there, encode, decode, the codec id in a v2 record batch's attributes)
_FUNCTIONS: dict[
    str, tuple[Callable[[], bool], Callable[[bytes], bytes], Callable[[bytes], bytes], int]
] = {
    "gzip": (codec.has_gzip, codec.gzip_encode, codec.gzip_decode, DefaultRecordBatch.CODEC_GZIP),
    "snappy": (
        codec.has_snappy,
        codec.snappy_encode,
        codec.snappy_decode,
        DefaultRecordBatch.CODEC_SNAPPY,
    ),
    "lz4": (codec.has_lz4, codec.lz4_encode, codec.lz4_decode, DefaultRecordBatch.CODEC_LZ4),
    "zstd": (codec.has_zstd, codec.zstd_encode, codec.zstd_decode, DefaultRecordBatch.CODEC_ZSTD),
}


def _submission(run: str, name: str, i: int = 0) -> dict[str, Any]:
    return random_submission(
        load_topology(),
        random.Random(f"{run}-{name}-{i}"),
        strategy_id=f"codec-{run}-{name}",
        client_intent_id=f"{run}-{name}-{i}",
        venues=["sim"],
    )


# --- without a broker ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CODECS)
def test_codec_library_is_installed_and_round_trips(name: str) -> None:
    available, encode, decode, _ = _FUNCTIONS[name]
    assert available(), f"aiokafka finds no library for {name} (pyproject: cramjam)"
    # Repetitive, like JSON records: something for the codec to compress.
    payload = orjson.dumps([_submission("unit", name, i) for i in range(20)])
    compressed = encode(payload)
    assert len(compressed) < len(payload)
    assert decode(compressed) == payload


@pytest.mark.parametrize("name", CODECS)
def test_a_compressed_record_batch_decodes(name: str) -> None:
    """What a fetcher does with a batch from the broker: build one with the codec, read it."""
    codec_id = _FUNCTIONS[name][3]
    values = [orjson.dumps(_submission("batch", name, i)) for i in range(5)]
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec_id,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=1_700_000_000_000, key=b"k", value=value, headers=[])
    batch = DefaultRecordBatch(bytes(builder.build()))
    assert batch.compression_type == codec_id
    assert [record.value for record in batch] == values


# --- against the broker and the workers ----------------------------------------------------


@pytest.mark.parametrize("name", CODECS)
async def test_an_intent_produced_with_each_codec_completes(
    name: str, workers: WorkerPool, prepared: Settings
) -> None:
    run = uuid.uuid4().hex[:8]
    bodies = [_submission(run, name, i) for i in range(3)]
    # linger: the three records share one compressed batch, as a busy producer's would
    producer = AIOKafkaProducer(
        bootstrap_servers=prepared.kafka, acks="all", compression_type=name, linger_ms=20
    )
    await producer.start()
    try:
        # Explicit timestamps, one per record: the intent id derives from the record's, and
        # a batched send's metadata reports the batch's timestamp, not each record's (two of
        # three ids predicted from it were wrong whenever the sends spanned a millisecond).
        stamps = [int(time.time() * 1000) + i for i in range(len(bodies))]
        futures = []
        for body, stamp in zip(bodies, stamps, strict=True):
            futures.append(
                await producer.send(
                    INPUT_TOPIC,
                    orjson.dumps(body),
                    key=submission_key(body["strategyId"], body["clientIntentId"]).encode(),
                    timestamp_ms=stamp,
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    ids = [
        predicted_intent_id(stamp, body["strategyId"], body["clientIntentId"])
        for body, stamp in zip(bodies, stamps, strict=True)
    ]
    outcome = await wait_until_finished(prepared.postgres, ids, timeout=90, pool=workers)
    assert [outcome[i] for i in ids] == ["exec.completed"] * 3, outcome
    assert workers.alive(), workers.log_tail()


def _kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        pytest.skip(
            "kcat is not installed (Debian: apt-get install kcat); the aiokafka "
            "producer tests above cover each codec"
        )
    return path


async def _intent_of(
    db: asyncpg.Connection,
    workers: WorkerPool,
    strategy: str,
    client_id: str,
    timeout: float,  # noqa: ASYNC109 - the timeout is named in the failure
) -> str:
    """The id ingest gave a submission (kcat cannot say which timestamp it stamped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and workers.alive():
        found = await db.fetchval(
            "SELECT correlation_id FROM events WHERE topic = 'intent.submitted' "
            "AND payload->'intent'->>'strategyId' = $1 "
            "AND payload->'intent'->>'clientIntentId' = $2",
            strategy,
            client_id,
        )
        if found:
            return str(found)
        await asyncio.sleep(0.25)
    state = "the workers are running" if workers.alive() else "a worker exited"
    raise AssertionError(
        f"no intent.submitted for {strategy}/{client_id} after "
        f"{timeout:.0f}s; {state}:\n{workers.log_tail()}"
    )


@pytest.mark.parametrize("name", CODECS)
async def test_an_intent_produced_by_kcat_with_each_codec_completes(
    name: str, workers: WorkerPool, prepared: Settings, db: asyncpg.Connection
) -> None:
    kcat = _kcat()
    run = uuid.uuid4().hex[:8]
    body = _submission(run, f"kcat-{name}")
    line = body["strategyId"].encode() + b"\t" + orjson.dumps(body) + b"\n"
    # -P: produce lines from stdin; -K: key and value split at the tab; -z: the codec.
    produced = await asyncio.to_thread(
        subprocess.run,
        [kcat, "-P", "-b", prepared.kafka, "-t", INPUT_TOPIC, "-K", "\t", "-z", name],
        input=line,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr.decode(errors="replace")
    intent = await _intent_of(db, workers, body["strategyId"], body["clientIntentId"], timeout=60)
    outcome = await wait_until_finished(prepared.postgres, [intent], timeout=60, pool=workers)
    assert outcome[intent] == "exec.completed", outcome
    assert workers.alive(), workers.log_tail()
