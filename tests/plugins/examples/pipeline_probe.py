"""Run as a script (a fresh process, so installed plugins load, as in a worker): the topology's
stages in memory over intents from three strategies; prints each strategy's outcome as JSON.

    python pipeline_probe.py TOPOLOGY DATA_DIR
    {"rogue-bot": {"event": "risk.rejected", "rule": "denylist", ...}, ...}
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import orjson

from pipeline.codec import decode_event
from pipeline.config import Settings
from pipeline.runtime.delivery.memory import build_memory_runtime
from pipeline.samples import submission
from pipeline.topology import load_topology

STAGES = ("ingest", "validate", "prioritise", "plan", "execute")
# (strategy, subject, counter): a listed strategy, a listed asset, an intent that may trade.
INTENTS = (("rogue-bot", "WETH", "USDC"), ("dca", "WBTC", "USDC"), ("dca", "WETH", "USDC"))


async def main(topology_path: str, data_dir: str) -> dict[str, Any]:
    topology = load_topology(topology_path)
    runtime, lifecycle = build_memory_runtime(topology, Settings(data_dir=Path(data_dir)), STAGES)
    await lifecycle.ensure_started()
    try:
        for i, (strategy, subject, counter) in enumerate(INTENTS):
            body = submission(
                topology,
                "DISPOSE",
                subject,
                counter,
                "1",
                strategy_id=strategy,
                client_intent_id=f"probe-{i}",
                venues=["sim"],
            )
            runtime.feed("sep.intents.submitted", strategy.encode(), orjson.dumps(body))
        await runtime.run_until_idle()
    finally:
        await lifecycle.stop()
    outcomes: dict[str, Any] = {}
    submitted = {}
    lanes = topology.stage("validate").inputs  # sep.intents.ingested, or its lane topics
    for record in (r for topic in lanes for r in runtime.topics.log.get(topic, [])):
        event = decode_event(record.value)
        intent = event.payload["intent"]
        symbol = intent["assets"][0]["asset"]["symbol"]
        submitted[event.correlation_id] = f"{intent['strategyId']}/{symbol}"
    for topic in ("sep.intents.validated", "sep.executions"):
        for record in runtime.topics.log.get(topic, []):
            event = decode_event(record.value)
            if event.topic in ("risk.approved", "risk.rejected", "exec.completed"):
                outcomes.setdefault(submitted[event.correlation_id], {})[event.topic] = (
                    event.payload
                )
    return outcomes


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
