"""A small producer for intents: what ``sep submit``, ``sep demo`` and the benchmarks use.

Any Kafka producer works; this one also predicts the intent id ingest will assign, since
the id is derived from (record timestamp, strategy id, client intent id).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from pipeline.ids import deterministic_ulid

INPUT_TOPIC = "sep.intents.submitted"


def predicted_intent_id(timestamp_ms: int, strategy_id: str, client_intent_id: str) -> str:
    return "intent-" + deterministic_ulid(timestamp_ms, strategy_id, client_intent_id)


class IntentProducer:
    def __init__(self, bootstrap: str, *, linger_ms: int = 2) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms,
                                          acks="all", max_batch_size=256 * 1024)

    async def __aenter__(self) -> IntentProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, body: dict[str, Any] | bytes, *, key: str | None = None,
                   timestamp_ms: int | None = None) -> tuple[int, Any]:
        """Queue one submission; returns (timestamp_ms, delivery future)."""
        stamp = timestamp_ms if timestamp_ms is not None else time.time_ns() // 1_000_000
        value = body if isinstance(body, bytes) else orjson.dumps(body)
        if key is None and isinstance(body, dict):
            key = str(body.get("strategyId", ""))
        future = await self._producer.send(INPUT_TOPIC, value, key=(key or "").encode(),
                                           timestamp_ms=stamp)
        return stamp, future

    async def flush(self) -> None:
        await self._producer.flush()
