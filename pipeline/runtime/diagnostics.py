"""What a worker's consumer is doing, for when intents stop moving (``kill -USR1 <pid>``).

The dump answers the questions a stall raises: which partitions this worker owns, which of
them faust is actually fetching (active), which are paused or parked as "buffer full", where
the fetch position and the committed offset are, how many records wait unacked, and when
each stage last finished a batch.  Everything is read defensively from faust's and
aiokafka's private attributes: a diagnostic must never take the worker down.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from pipeline.runtime import gc_tuning

log = logging.getLogger(__name__)

# stage name -> monotonic time of its last finished batch, and the pump queue's size getter.
LAST_BATCH_AT: dict[str, float] = {}
PUMP_DEPTH: dict[str, Any] = {}


def _tps(tps: Iterable[Any] | None) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in tps or ())


def _tp_map(mapping: Any) -> dict[str, Any]:
    try:
        return {f"{tp.topic}/{tp.partition}": value for tp, value in dict(mapping).items()}
    except Exception as exc:  # pragma: no cover - diagnostics only
        return {"error": repr(exc)}


def fetch_positions(consumer: Any) -> dict[Any, int | None]:
    """aiokafka's fetch position of each assigned partition (``None``: not valid yet).

    faust runs the aiokafka consumer in a thread of its own (``consumer._thread._consumer``);
    reading an int from it here is a benign race.
    """
    kafka = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if kafka is None:
        return {}
    subscription = kafka._subscription.subscription
    if subscription is None or subscription.assignment is None:
        return {}
    positions: dict[Any, int | None] = {}
    for tp in subscription.assignment.tps:
        tp_state = subscription.assignment.state_value(tp)
        valid = tp_state is not None and tp_state.has_valid_position
        positions[tp] = int(tp_state.position) if valid else None
    return positions


def consumer_state(app: Any) -> dict[str, Any]:
    """A JSON-able snapshot of the worker's consumer and stages."""
    state: dict[str, Any] = {}
    try:
        consumer = app.consumer
        state["assigned"] = _tps(consumer.assignment())
        state["active"] = _tps(getattr(consumer, "_active_partitions", None))
        state["paused"] = _tps(getattr(consumer, "_paused_partitions", None))
        state["buffered"] = _tps(getattr(consumer, "_buffered_partitions", None))
        state["committed"] = _tp_map(getattr(consumer, "_committed_offset", {}))
        state["read"] = _tp_map(getattr(consumer, "_read_offset", {}))
        state["commit_base"] = _tp_map(getattr(consumer, "_base", {}))
        state["refetches"] = getattr(consumer, "refetches", None)
        state["acked_pending"] = {
            k: len(v) for k, v in _tp_map(getattr(consumer, "_acked", {})).items() if v
        }
        state["unacked"] = len(getattr(consumer, "_unacked_messages", ()))
        state["flow_active"] = bool(getattr(consumer, "flow_active", None))
        kafka = getattr(getattr(consumer, "_thread", None), "_consumer", None)
        if kafka is not None:
            state["kafka_paused"] = _tps(kafka.paused())
            positions = fetch_positions(consumer)
            if positions:
                state["positions"] = _tp_map(positions)
        state["gc"] = {k: round(v, 1) for k, v in gc_tuning.STATS.items()}
        state["in_recovery"] = bool(getattr(app, "in_recovery", False))
        state["flow_control_active"] = app.flow_control.is_active()
    except Exception as exc:  # pragma: no cover - diagnostics only
        state["error"] = repr(exc)
    now = time.monotonic()
    state["last_batch_s_ago"] = {k: round(now - v, 1) for k, v in LAST_BATCH_AT.items()}
    state["pump_depth"] = {k: f() for k, f in PUMP_DEPTH.items()}
    try:
        state["channel_depth"] = {
            agent.name: agent.channel.queue.qsize() for agent in app.agents.values()
        }
    except Exception as exc:  # pragma: no cover - diagnostics only
        state["channel_depth_error"] = repr(exc)
    return state


def log_consumer_state(app: Any) -> None:
    log.warning("consumer state %s", json.dumps(consumer_state(app), sort_keys=True))
